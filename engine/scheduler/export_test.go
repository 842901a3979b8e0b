package scheduler

// UseSimplePaths turns s's fast paths off, so that a test can compare a
// scheduler taking them with one that does not.
func UseSimplePaths(s *Scheduler) { s.simple = true }

// SetSweepMin makes s sweep its forgotten tasks once n pile up (and
// outnumber the live ones four to one), so that small tests sweep often.
func SetSweepMin(s *Scheduler, n int) { s.sweepMin = n }
