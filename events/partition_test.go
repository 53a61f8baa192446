package events_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// fnv1a is FNV-1a 32 written out from its definition, as anyone
// recomputing a partition would.
func fnv1a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func TestPartitionIsFNV1aOfTheProvinceModN(t *testing.T) {
	used := map[int]bool{}
	for i := 0; i < 63; i++ {
		prov := "P" + strconv.Itoa(i)
		for _, n := range []int{1, 2, 4, 8} {
			got := events.Partition(prov, n)
			if want := int(fnv1a(prov) % uint32(n)); got != want {
				t.Fatalf("Partition(%q, %d) = %d, want %d", prov, n, got, want)
			}
			if n == 4 {
				used[got] = true
			}
		}
	}
	if len(used) != 4 {
		t.Fatalf("63 provinces over 4 partitions used only %v", used)
	}
	// Fixed values, so that a change of hash cannot pass unnoticed.
	for prov, want := range map[string]int{"HN": int(fnv1a("HN") % 4), "HCM": int(fnv1a("HCM") % 4)} {
		if got := events.Partition(prov, 4); got != want {
			t.Errorf("Partition(%q, 4) = %d, want %d", prov, got, want)
		}
	}
}

const twoProvinces = `{"id":"vn","name":"Bầu cử","date":"2026-03-15","levels":["province","commune"],
	"areas":[{"id":"HN","name":"Hà Nội","level":"province"},{"id":"HP","name":"Hải Phòng","level":"province"},
	         {"id":"HN-A","name":"A","level":"commune","parent":"HN"},{"id":"HP-A","name":"B","level":"commune","parent":"HP"}],
	"stations":[{"id":"HN-1","name":"1","area":"HN-A","registered":100},{"id":"HP-1","name":"2","area":"HP-A","registered":100}],
	"contests":[{"id":"QH","name":"Quốc hội","level":"national","units":[%s]}]}`

const unitOf = `{"id":"%s","name":"Đơn vị","seats":1,"areas":[%s],"stations":[],"candidates":[{"id":"A-%[1]s","name":"A","born":"1970-01-01"},{"id":"B-%[1]s","name":"B","born":"1970-01-01"}]}`

func parseTwo(t *testing.T, units ...string) *tally.Election {
	t.Helper()
	e, err := tally.Parse([]byte(strings.Replace(twoProvinces, "%s", strings.Join(units, ","), 1)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func unit(id string, areas ...string) string {
	return strings.NewReplacer("%s", id, "%[1]s", id).Replace(strings.Replace(unitOf, "[%s]", "["+`"`+strings.Join(areas, `","`)+`"`+"]", 1))
}

func TestCheckPartitionableRefusesAUnitSpanningProvinces(t *testing.T) {
	ok := parseTwo(t, unit("U-HN", "HN"), unit("U-HP", "HP"))
	if err := events.CheckPartitionable(ok); err != nil {
		t.Fatalf("one unit per province: %v", err)
	}
	bad := parseTwo(t, unit("U-BOTH", "HN", "HP"))
	err := events.CheckPartitionable(bad)
	if err == nil || !strings.Contains(err.Error(), "U-BOTH") || !strings.Contains(err.Error(), "HP") {
		t.Fatalf("a unit over HN and HP: %v, want an error naming it and the provinces", err)
	}
}

// TestPartitionStreamsCaptureEachProvinceOnce: every station's subject is
// captured by exactly the stream of its partition.
func TestPartitionStreamsCaptureEachProvinceOnce(t *testing.T) {
	e := parseTwo(t, unit("U-HN", "HN"), unit("U-HP", "HP"))
	if got := events.PartitionStreamConfigs(e, 1, 1); len(got) != 1 || got[0].Name != events.StreamName("vn") || got[0].Subjects[0] != events.StreamSubjects("vn") {
		t.Fatalf("N=1: %+v, want the v1 stream", got)
	}
	for _, n := range []int{2, 3, 4} {
		cfgs := events.PartitionStreamConfigs(e, n, 1)
		if len(cfgs) != n {
			t.Fatalf("N=%d: %d streams", n, len(cfgs))
		}
		for s := range e.Stations {
			subj := events.Subject(e, s, "QH")
			var in []int
			for p, cfg := range cfgs {
				for _, f := range cfg.Subjects {
					if strings.HasSuffix(f, ">") && strings.HasPrefix(subj, strings.TrimSuffix(f, ">")) {
						in = append(in, p)
					}
				}
				if cfg.Metadata[events.MetaPartitions] != strconv.Itoa(n) || cfg.Metadata[events.MetaPartition] != strconv.Itoa(p) {
					t.Fatalf("N=%d stream %s metadata %v", n, cfg.Name, cfg.Metadata)
				}
			}
			if want := events.StationPartition(e, s, n); len(in) != 1 || in[0] != want {
				t.Fatalf("N=%d: %s captured by partitions %v, want only %d", n, subj, in, want)
			}
		}
	}
}
