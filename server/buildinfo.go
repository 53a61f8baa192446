package server

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyvn/tally/internal/buildinfo"
)

// buildInfoGauge is tally_build_info: always 1, its labels say which tally
// runs (the module version and VCS revision), so that a dashboard can show
// it and an alert can see two versions in one deployment.
func buildInfoGauge() prometheus.Collector {
	in := buildinfo.Read()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tally_build_info",
		Help: "Always 1; the labels give the version and VCS revision tally was built from.",
		ConstLabels: prometheus.Labels{
			"version": in.Version, "revision": in.Revision,
			"modified": strconv.FormatBool(in.Modified), "goversion": in.GoVersion,
		},
	})
	g.Set(1)
	return g
}
