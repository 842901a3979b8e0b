package scenarios

import "errors"

// RunReal runs sc against real swarmd containers on Docker.
func RunReal(sc *Scenario, opt Options) (*Result, error) {
	return nil, errors.New("real mode (--real) is not built yet")
}
