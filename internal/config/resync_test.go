package config

import "testing"

// The scheduled re-sync stops two weeks after the MX moved unless
// configured otherwise.
func TestResyncStopDays(t *testing.T) {
	if c := Default(); c.Jobs.ResyncStopDays != 14 {
		t.Errorf("default %d", c.Jobs.ResyncStopDays)
	}
	c, err := Parse([]byte("jobs.resync_stop_days = 30\n"), "t.conf")
	if err != nil || c.Jobs.ResyncStopDays != 30 {
		t.Errorf("parsed %d, %v", c.Jobs.ResyncStopDays, err)
	}
}
