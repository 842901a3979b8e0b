// Package env declares the small interfaces through which the engine meets
// its world: a loop, a clock, randomness, a transport, a disk and a
// container executor. The simulator (sim/) and real mode (realnet/) each
// implement all of them; engine code sees nothing else.
//
// This package holds interfaces and plain data only. It must never import
// another engine package, the simulator or realnet.
package env
