package report

import (
	"errors"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat"
)

// Summary is the distribution of a sample.
type Summary struct {
	N                   int
	Mean, P50, P99, Max float64
	Min                 float64
}

// Summarize describes xs (which it does not change). Quantiles are
// empirical: the smallest sample at or above the fraction.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Summary{
		N:    len(s),
		Mean: stat.Mean(s, nil),
		P50:  stat.Quantile(0.5, stat.Empirical, s, nil),
		P99:  stat.Quantile(0.99, stat.Empirical, s, nil),
		Max:  s[len(s)-1],
		Min:  s[0],
	}
}

// Median is the empirical median of xs.
func Median(xs []float64) float64 { return Summarize(xs).P50 }

// PowerFit is y ≈ Coeff · x^Exponent, fitted by least squares on
// log-log axes.
type PowerFit struct {
	Exponent, Coeff float64
	// R2 is the coefficient of determination of the log-log line.
	R2 float64
}

// At is the fitted y at x.
func (f PowerFit) At(x float64) float64 { return f.Coeff * math.Pow(x, f.Exponent) }

// FitPower fits y = c·x^k to points with positive coordinates.
func FitPower(x, y []float64) (PowerFit, error) {
	if len(x) != len(y) || len(x) < 2 {
		return PowerFit{}, errors.New("report: a power fit needs two or more points")
	}
	lx := make([]float64, len(x))
	ly := make([]float64, len(y))
	for i := range x {
		if x[i] <= 0 || y[i] <= 0 {
			return PowerFit{}, errors.New("report: a power fit needs positive values")
		}
		lx[i], ly[i] = math.Log(x[i]), math.Log(y[i])
	}
	alpha, beta := stat.LinearRegression(lx, ly, nil, false)
	r2 := 1.0
	if len(x) > 2 {
		r2 = stat.RSquared(lx, ly, nil, alpha, beta)
	}
	return PowerFit{Exponent: beta, Coeff: math.Exp(alpha), R2: r2}, nil
}
