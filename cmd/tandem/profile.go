package main

import (
	"os"
	"runtime/pprof"
)

// startCPUProfile writes a CPU profile to file until the returned stop is
// called; an empty file profiles nothing. `tandem serve` profiles itself
// when $TANDEM_CPUPROFILE names a file, which `tandem bench
// --server-process --server-cpuprofile FILE` uses to profile the server
// apart from its load.
func startCPUProfile(file string) (stop func(), err error) {
	if file == "" {
		return func() {}, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
