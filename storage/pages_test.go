package storage

import (
	"testing"
	"time"
)

func TestPagesPerCommit(t *testing.T) {
	for _, one := range []bool{false, true} {
		b := &testing.B{}
		_ = b
		db := openTestDB(t, Config{})
		res := testing.Benchmark(func(b *testing.B) { benchAppendDB(b, db, true, one, 100) })
		st := db.bolt.Stats()
		s := db.Stats()
		n := time.Duration(s.Commits)
		t.Logf("one=%v %v writes=%d commits=%d pages/commit=%.1f commit=%v write=%v spill=%v rebalance=%v", one, res, st.TxStats.GetWrite(), s.Commits, float64(st.TxStats.GetWrite())/float64(s.Commits),
			s.CommitTime/n, st.TxStats.GetWriteTime()/n, st.TxStats.GetSpillTime()/n, st.TxStats.GetRebalanceTime()/n)
	}
}
