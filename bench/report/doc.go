// Package report writes what a benchmark measured: NAME.json (the figures,
// with the machine and commit they were measured on), NAME.md (the same
// figures as tables, the targets they meet or miss, the plots and how they
// were measured), SVG plots, NAME.txt (Go benchmark format lines for
// benchstat) and index.md, the entry page linking every report in a
// directory. It also holds what several benchmarks share: quantiles and
// power-law fits (gonum/stat), plots (gonum/plot), the machine and commit
// description, and a progress display.
//
// What it owns: the file formats. A figure's value is rounded once, when
// it is made, so the JSON and the Markdown print the same number.
//
// What it must never do: measure anything, or run a simulation; it only
// writes what the benchmark packages (bench/...) hand it.
package report
