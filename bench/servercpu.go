package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ, 100 on
// Linux).
const clockTick = 10 * time.Millisecond

// processCPU returns the user and system CPU time a process has used, from
// /proc/PID/stat.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after its closing parenthesis, where field 3 (state) comes first.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad CPU times", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// processSyscalls returns how many read and write system calls a process
// has made (syscr and syscw of /proc/PID/io: reads and writes of sockets
// and files alike).
func processSyscalls(pid int) (reads, writes int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes, nil
}

// selfCPU returns the CPU time this process (the load generator) has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter measures the CPU a child server and the load generator use over
// a window.
type cpuMeter struct {
	pid            int
	httpURL        string
	server0, load0 time.Duration
	Server, Load   time.Duration // over the window, once stopped
	serverOK       bool
	// The server's write system calls and the frames it sent (from
	// /metrics) over the window.
	writes0, frames0 float64
	Writes, Frames   float64
	countsOK         bool
	// The server's storage commits over the window (from /metrics; none
	// in cluster mode).
	commits0, Commits float64
	commitsOK         bool
}

// startCPU starts measuring; pid 0 (the server is in this process or
// elsewhere) measures the load generator only, which then includes the
// in-process server.
func startCPU(tg *target) *cpuMeter {
	m := &cpuMeter{pid: tg.pid, httpURL: tg.httpURL}
	if m.pid != 0 {
		_, w, err1 := processSyscalls(m.pid)
		f, err2 := metric(m.httpURL, "tandem_messages_out_total")
		m.writes0, m.frames0, m.countsOK = float64(w), f, err1 == nil && err2 == nil
		c, err3 := metric(m.httpURL, "tandem_storage_commits_total")
		m.commits0, m.commitsOK = c, err3 == nil
		var err error
		m.server0, err = processCPU(m.pid)
		m.serverOK = err == nil
	}
	m.load0 = selfCPU()
	return m
}

// stop ends the window.
func (m *cpuMeter) stop() {
	m.Load = selfCPU() - m.load0
	if m.serverOK {
		s, err := processCPU(m.pid)
		m.serverOK = err == nil
		m.Server = s - m.server0
	}
	if m.countsOK {
		_, w, err1 := processSyscalls(m.pid)
		f, err2 := metric(m.httpURL, "tandem_messages_out_total")
		m.Writes, m.Frames, m.countsOK = float64(w)-m.writes0, f-m.frames0, err1 == nil && err2 == nil
	}
	if m.commitsOK {
		c, err := metric(m.httpURL, "tandem_storage_commits_total")
		m.Commits, m.commitsOK = c-m.commits0, err == nil
	}
}

// report adds the window's figures to res: the server's CPU in all, per
// unit (e.g. "op") over units and per delivery over deliveries, and the
// load generator's CPU. Only a child server's CPU is reported apart.
func (m *cpuMeter) report(res *Result, unit string, units, deliveries float64) {
	res.Figures["load_cpu_s"] = m.Load.Seconds()
	if !m.serverOK {
		return
	}
	us := float64(m.Server) / float64(time.Microsecond)
	res.Figures["server_cpu_s"] = m.Server.Seconds()
	if units > 0 {
		res.Figures["server_cpu_us_per_"+unit] = us / units
	}
	if deliveries > 0 {
		res.Figures["server_cpu_us_per_delivery"] = us / deliveries
	}
	if m.countsOK && m.Writes > 0 {
		res.Figures["server_write_calls"] = m.Writes
		res.Figures["server_frames_per_write"] = m.Frames / m.Writes
	}
	if m.commitsOK && m.Commits > 0 {
		res.Figures["server_storage_commits"] = m.Commits
		if unit == "op" && units > 0 {
			res.Figures["server_ops_per_commit"] = units / m.Commits
		}
	}
}
