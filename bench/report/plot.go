package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plot size: readable inline on a Markdown page.
const (
	plotWidth  = 7.5 * vg.Inch
	plotHeight = 4.2 * vg.Inch
)

// Series is one named line of points.
type Series struct {
	Name string
	X, Y []float64
}

// CDF is a named sample drawn as its empirical distribution function.
type CDF struct {
	Name   string
	Values []float64
}

// CDFPlot draws the empirical CDFs of samples as steps: the fraction of
// trials at or below each value.
func CDFPlot(title, xLabel string, logX bool, cdfs []CDF) Plot {
	return Plot{Title: title, Draw: func() ([]byte, error) {
		p := newPlot(title, xLabel, "fraction of trials ≤ x")
		p.Y.Min, p.Y.Max = 0, 1
		for i, c := range cdfs {
			if len(c.Values) == 0 {
				continue
			}
			s := slices.Clone(c.Values)
			slices.Sort(s)
			pts := make(plotter.XYs, 0, len(s)+1)
			pts = append(pts, plotter.XY{X: s[0], Y: 0})
			for j, v := range s {
				pts = append(pts, plotter.XY{X: v, Y: float64(j+1) / float64(len(s))})
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return nil, err
			}
			l.StepStyle = plotter.PostStep
			l.Color = plotutil.Color(i)
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(c.Name, l)
		}
		if logX {
			setLog(&p.X)
		}
		// Top left is empty on a CDF: every curve is low at the left.
		p.Legend.Top = true
		p.Legend.Left = true
		return render(p)
	}}
}

// LinePlot draws series as lines with points, on linear or log axes.
// fits, when given, are drawn as dashed lines beside the series with the
// same index.
func LinePlot(title, xLabel, yLabel string, logX, logY bool, series []Series, fits []PowerFit) Plot {
	return Plot{Title: title, Draw: func() ([]byte, error) {
		p := newPlot(title, xLabel, yLabel)
		for i, s := range series {
			pts := make(plotter.XYs, len(s.X))
			for j := range s.X {
				pts[j] = plotter.XY{X: s.X[j], Y: s.Y[j]}
			}
			l, sc, err := plotter.NewLinePoints(pts)
			if err != nil {
				return nil, err
			}
			l.Color = plotutil.Color(i)
			l.Width = vg.Points(1.5)
			sc.Color = plotutil.Color(i)
			sc.Shape = plotutil.Shape(i)
			p.Add(l, sc)
			p.Legend.Add(s.Name, l, sc)
			if i < len(fits) && fits[i].Coeff > 0 && len(s.X) > 0 {
				fit := fits[i]
				lo, hi := slices.Min(s.X), slices.Max(s.X)
				n := 50
				fp := make(plotter.XYs, n)
				for j := range n {
					x := lo + (hi-lo)*float64(j)/float64(n-1)
					if logX {
						x = lo * math.Pow(hi/lo, float64(j)/float64(n-1))
					}
					fp[j] = plotter.XY{X: x, Y: fit.At(x)}
				}
				fl, err := plotter.NewLine(fp)
				if err != nil {
					return nil, err
				}
				fl.Color = plotutil.Color(i)
				fl.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
				p.Add(fl)
				p.Legend.Add(fmt.Sprintf("fit: ∝ n^%.2f", fit.Exponent), fl)
			}
		}
		if logX {
			setLog(&p.X)
		}
		if logY {
			setLog(&p.Y)
		}
		// Room on the right for the last tick's label, which is centred
		// on the axis's end.
		if logX {
			p.X.Max *= 1.25
		} else {
			p.X.Max += 0.04 * (p.X.Max - p.X.Min)
		}
		p.Legend.Top, p.Legend.Left = emptiestCorner(p, series, logX, logY)
		return render(p)
	}}
}

// emptiestCorner picks the corner of the plot with the fewest points of
// series in it, so that the legend covers no data; top left on a tie.
func emptiestCorner(p *plot.Plot, series []Series, logX, logY bool) (top, left bool) {
	norm := func(v, lo, hi float64, log bool) float64 {
		if log {
			if v <= 0 || lo <= 0 {
				return 0
			}
			v, lo, hi = math.Log(v), math.Log(lo), math.Log(hi)
		}
		if hi <= lo {
			return 0.5
		}
		return (v - lo) / (hi - lo)
	}
	// A corner is the outer 40% of each axis: about what a legend of a
	// few entries takes.
	const reach = 0.4
	best, bestN := [2]bool{true, true}, math.MaxInt
	for _, c := range [][2]bool{{true, true}, {true, false}, {false, true}, {false, false}} {
		n := 0
		for _, s := range series {
			for j := range s.X {
				x := norm(s.X[j], p.X.Min, p.X.Max, logX)
				y := norm(s.Y[j], p.Y.Min, p.Y.Max, logY)
				inX := x <= reach
				if !c[1] {
					inX = x >= 1-reach
				}
				inY := y >= 1-reach
				if !c[0] {
					inY = y <= reach
				}
				if inX && inY {
					n++
				}
			}
		}
		if n < bestN {
			best, bestN = c, n
		}
	}
	return best[0], best[1]
}

// BarGroup is one group of bars along the x axis.
type BarGroup struct {
	Label  string
	Values []float64 // one per bar series
}

// BarPlot draws grouped horizontal bars: one group per BarGroup, labelled
// on the left, one bar per series name within it, the first series on top.
func BarPlot(title, valueLabel string, seriesNames []string, groups []BarGroup) Plot {
	return Plot{Title: title, Draw: func() ([]byte, error) {
		p := newPlot(title, valueLabel, "")
		n := max(1, len(seriesNames))
		if n > 1 {
			// An empty group at the bottom keeps the legend off the bars.
			groups = append(slices.Clone(groups), BarGroup{})
		}
		w := vg.Points(min(14, 200/float64(max(1, len(groups)*n))))
		// Groups read top to bottom: the first is drawn at the top.
		labels := make([]string, len(groups))
		for i, g := range groups {
			// Non-breaking spaces widen the room the axis keeps for the
			// labels: a viewer without the plot's font (Liberation) draws
			// them with a wider one.
			labels[len(groups)-1-i] = g.Label + strings.Repeat("\u00a0", 2+len(g.Label)/3)
		}
		for si, name := range seriesNames {
			vals := make(plotter.Values, len(groups))
			for gi, g := range groups {
				if si < len(g.Values) {
					vals[len(groups)-1-gi] = g.Values[si]
				}
			}
			b, err := plotter.NewBarChart(vals, w)
			if err != nil {
				return nil, err
			}
			b.Horizontal = true
			b.LineStyle.Width = 0
			b.Color = plotutil.Color(si)
			b.Offset = -w * vg.Length(float64(si)-float64(n-1)/2)
			p.Add(b)
			p.Legend.Add(name, b)
		}
		p.NominalY(labels...)
		p.Legend.Top = false
		p.Legend.Left = false
		p.X.Min = 0
		h := max(3*vg.Inch, vg.Length(len(groups)*n)*w*1.5+1.5*vg.Inch)
		return renderSize(p, plotWidth, h)
	}}
}

// shortNumber writes large tick values with k and M: 100k, not 100000.
func shortNumber(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	p.BackgroundColor = color.White
	return p
}

func setLog(a *plot.Axis) {
	if a.Min <= 0 {
		return // a log axis cannot show zero; keep it linear
	}
	a.Scale = plot.LogScale{}
	a.Tick.Marker = logTicks{}
}

// logTicks labels 1, 2 and 5 times each power of ten (plot.LogTicks
// labels only the powers, which leaves a narrow range unlabelled), with
// minor ticks between.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi; e++ {
		base := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := base * float64(m)
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = shortNumber(v)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

func render(p *plot.Plot) ([]byte, error) { return renderSize(p, plotWidth, plotHeight) }

func renderSize(p *plot.Plot, w, h vg.Length) ([]byte, error) {
	wt, err := p.WriterTo(w, h, "svg")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
