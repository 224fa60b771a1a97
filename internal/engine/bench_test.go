package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"mailmigrate/internal/engine"
	"mailmigrate/internal/store"
	"mailmigrate/internal/testbed"
)

// BenchmarkMigrate copies a generated corpus into an empty Dovecot account
// per iteration, and then re-runs it with nothing to copy.
func BenchmarkMigrate(b *testing.B) {
	d := testbed.StartDovecotT(b, testbed.DovecotOptions{})
	if err := d.AddUser(srcUser, srcPass, 0); err != nil {
		b.Fatal(err)
	}
	corpus := testbed.GenerateCorpus(testbed.CorpusOptions{Seed: 42, Messages: 1000})
	var bytes int64
	for _, m := range corpus.Messages {
		bytes += int64(len(m.Body))
	}
	if err := corpus.Load(context.Background(), d.LoginT(b, srcUser, srcPass)); err != nil {
		b.Fatal(err)
	}
	led, err := store.Open(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer led.Close()
	account := func(user string) engine.Account {
		return engine.Account{Source: endpoint(b, d), SourceUser: srcUser, SourcePassword: srcPass,
			Dest: endpoint(b, d), DestUser: user, DestPassword: dstPass}
	}
	n := 0
	b.Run("initial", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			n++
			user := fmt.Sprintf("dst%d@new.test", n)
			if err := d.AddUser(user, dstPass, 0); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			r, err := engine.Run(context.Background(), account(user), led, engine.Options{})
			if err != nil || r.Totals.Copied != len(corpus.Messages) {
				b.Fatalf("copied %d: %v", r.Totals.Copied, err)
			}
		}
		b.ReportMetric(float64(len(corpus.Messages)*b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.ReportMetric(float64(bytes*int64(b.N))/b.Elapsed().Seconds()/(1<<20), "MB/s")
	})
	b.Run("rerun", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r, err := engine.Run(context.Background(), account("dst1@new.test"), led, engine.Options{})
			if err != nil || r.Totals.Copied != 0 {
				b.Fatalf("re-run copied %d: %v", r.Totals.Copied, err)
			}
		}
	})
}
