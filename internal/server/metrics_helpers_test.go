package server_test

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// metricValue reads one sample from the server's /metrics: name with its
// labels as Prometheus prints them (`tandem_x_total{reason="per_ip"}`), 0
// when the server does not print it.
func metricValue(tb testing.TB, addr, sample string) float64 {
	tb.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		tb.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && name == sample {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				tb.Fatalf("/metrics: %s: %v", sc.Text(), err)
			}
			return v
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("GET /metrics: %v", err)
	}
	return 0
}
