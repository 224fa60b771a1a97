package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// startProfiles starts CPU profiling and a watch of the heap; the
// returned func stops both and writes the heap profile taken when the
// heap was largest (at the end everything is freed: nothing to see).
func startProfiles(cpuPath, memPath string) (func(), error) {
	var cpu *os.File
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		cpu = f
	}
	var peak chan []byte
	stop := make(chan struct{})
	if memPath != "" {
		peak = make(chan []byte, 1)
		go watchHeap(stop, peak)
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
		if memPath != "" {
			close(stop)
			if err := os.WriteFile(memPath, <-peak, 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "mailmigrate: --memprofile: %v\n", err)
			}
		}
	}, nil
}

// watchHeap looks at the heap every 100 ms and keeps a heap profile of
// the largest it saw, which it sends on peak when stop closes.
func watchHeap(stop <-chan struct{}, peak chan<- []byte) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var most uint64
	var best bytes.Buffer
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			if best.Len() == 0 {
				pprof.Lookup("heap").WriteTo(&best, 0)
			}
			peak <- best.Bytes()
			return
		case <-tick.C:
		}
		metrics.Read(sample)
		if n := sample[0].Value.Uint64(); n > most {
			most = n
			// The profile is of the last completed GC cycle: close enough
			// to the peak, and without forcing a collection.
			best.Reset()
			pprof.Lookup("heap").WriteTo(&best, 0)
		}
	}
}
