package harness

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const mib = 1 << 20

// pidStatusKiB reads a "<field>: N kB" line of /proc/<pid>/status (pid 0:
// this process), or 0.
func pidStatusKiB(pid int, field string) int64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// peakRSSMiB is the process's resident high-water mark (VmHWM).
func peakRSSMiB() float64 { return float64(pidStatusKiB(0, "VmHWM")) / 1024 }

// resetPeakRSS lowers the high-water mark to the current resident size, so
// the next peakRSSMiB is the peak of what follows (Linux ≥ 4.0). Garbage
// is collected and returned to the kernel first, so a phase is not charged
// for what the previous one left behind.
func resetPeakRSS() {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// dirMiB is the size of the files under dir.
func dirMiB(dir string) float64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return float64(n) / mib
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), NATS: "embedded"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				m.MemoryMiB = n / 1024
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

// profiler writes one CPU profile per phase when a prefix is set.
type profiler struct {
	prefix string
	file   *os.File
}

// start begins profiling phase; stop returns the file written ("" if none).
func (p *profiler) start(phase string) {
	if p.prefix == "" {
		return
	}
	f, err := os.Create(p.prefix + "-" + phase + ".pprof")
	if err != nil {
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return
	}
	p.file = f
}

func (p *profiler) stop() string {
	if p.file == nil {
		return ""
	}
	pprof.StopCPUProfile()
	name := p.file.Name()
	p.file.Close()
	p.file = nil
	return name
}

// cpuSeconds returns the CPU time this process has used so far, user and
// system, on every thread (the embedded NATS server's included).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// loadAverage returns the machine's 1-minute load average (/proc/loadavg),
// 0 if unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _, _ := strings.Cut(string(b), " ")
	v, _ := strconv.ParseFloat(f, 64)
	return v
}
