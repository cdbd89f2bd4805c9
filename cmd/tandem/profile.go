package main

import (
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles starts the profiles $TANDEM_CPUPROFILE and
// $TANDEM_MEMPROFILE name (see startCPUProfile and startAllocProfile),
// which `tandem bench --server-process --server-cpuprofile FILE
// --server-memprofile FILE` use to profile the server apart from its
// load. The returned stop writes them.
func startProfiles() (stop func(), err error) {
	stopCPU, err := startCPUProfile(os.Getenv("TANDEM_CPUPROFILE"))
	if err != nil {
		return nil, err
	}
	stopAllocs, err := startAllocProfile(os.Getenv("TANDEM_MEMPROFILE"))
	if err != nil {
		stopCPU()
		return nil, err
	}
	return func() { stopCPU(); stopAllocs() }, nil
}

// startAllocProfile has the returned stop write the allocations made since
// the process started (little before the load of a benchmark) to file, as
// a pprof "allocs" profile; an empty file profiles nothing. The file is
// created at once, so that a bad path fails the start.
func startAllocProfile(file string) (stop func(), err error) {
	if file == "" {
		return func() {}, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	return func() {
		runtime.GC() // the profile shows allocations up to the last GC
		_ = pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
	}, nil
}

// startCPUProfile writes a CPU profile to file until the returned stop is
// called; an empty file profiles nothing.
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
