package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pgCluster is a PostgreSQL server the harness made for itself: a new
// cluster in a temporary directory, listening on loopback only.
type pgCluster struct {
	bin     string // directory of initdb, pg_ctl, postgres
	dir     string // data directory, also the Unix socket directory
	port    int
	cred    *syscall.Credential // whom the server runs as, when we are root
	install string              // what was done to get PostgreSQL
	logf    func(string, ...any)
}

// findPostgres returns the bin directory of the newest PostgreSQL under
// /usr/lib/postgresql (Debian's layout), installing the Debian package
// postgresql if there is none.
func findPostgres(ctx context.Context, logf func(string, ...any)) (bin, install string, err error) {
	if bin = newestPostgres(); bin != "" {
		return bin, "", nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", "", errors.New("PostgreSQL not found under /usr/lib/postgresql/*/bin and no apt-get to install it")
	}
	run := func(args ...string) error {
		logf("postgres: not found under /usr/lib/postgresql/*/bin; running %s", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, tail(out, 2000))
		}
		return nil
	}
	install = "apt-get install -y postgresql"
	if err := run("apt-get", "install", "-y", "postgresql"); err != nil {
		// A fresh machine may not have the package lists yet.
		if err := run("apt-get", "update"); err != nil {
			return "", "", err
		}
		install = "apt-get update && apt-get install -y postgresql"
		if err := run("apt-get", "install", "-y", "postgresql"); err != nil {
			return "", "", err
		}
	}
	if bin = newestPostgres(); bin == "" {
		return "", "", errors.New("installed postgresql, but found no /usr/lib/postgresql/*/bin/pg_ctl")
	}
	return bin, install, nil
}

func newestPostgres() string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	var best string
	bestV := -1.0
	for _, m := range matches {
		bin := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(bin, "initdb")); err != nil {
			continue
		}
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(bin)), 64)
		if v > bestV {
			best, bestV = bin, v
		}
	}
	return best
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// startPostgres makes a cluster in a new temporary directory under parent
// and starts it on a free loopback port. PostgreSQL refuses to run as root,
// so when we are root the cluster belongs to the user postgres (created
// with useradd if missing).
func startPostgres(ctx context.Context, parent string, settings []string, logf func(string, ...any)) (*pgCluster, error) {
	bin, install, err := findPostgres(ctx, logf)
	if err != nil {
		return nil, err
	}
	c := &pgCluster{bin: bin, install: install, logf: logf}
	if os.Geteuid() == 0 {
		c.cred, err = postgresUser(ctx, logf)
		if err != nil {
			return nil, err
		}
	}
	c.dir, err = os.MkdirTemp(parent, "tallybench-pg-")
	if err != nil {
		return nil, err
	}
	if c.cred != nil {
		if err := os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			c.remove()
			return nil, err
		}
	}
	if c.port, err = freePort(); err != nil {
		c.remove()
		return nil, err
	}
	logf("postgres: %s/initdb -D %s (as %s)", bin, c.dir, c.who())
	if err := c.run(ctx, "initdb", "-D", c.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		c.remove()
		return nil, err
	}
	opts := []string{"-c listen_addresses=127.0.0.1", "-p " + strconv.Itoa(c.port), "-k " + c.dir}
	for _, s := range settings {
		opts = append(opts, "-c "+s)
	}
	logf("postgres: pg_ctl start on 127.0.0.1:%d %s", c.port, strings.Join(opts, " "))
	if err := c.run(ctx, "pg_ctl", "-D", c.dir, "-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "120", "-o", strings.Join(opts, " "), "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		c.remove()
		return nil, fmt.Errorf("%w\n%s", err, tail(log, 2000))
	}
	return c, nil
}

// postgresUser returns the credentials of the user postgres, creating it if
// it does not exist.
func postgresUser(ctx context.Context, logf func(string, ...any)) (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		logf("postgres: no user postgres; running useradd --system --no-create-home postgres")
		out, err := exec.CommandContext(ctx, "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("useradd postgres: %w\n%s", err, tail(out, 1000))
		}
		if u, err = user.Lookup("postgres"); err != nil {
			return nil, err
		}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (c *pgCluster) who() string {
	if c.cred == nil {
		return "the current user"
	}
	return "user postgres"
}

// run runs one of PostgreSQL's programs as the cluster's owner.
func (c *pgCluster) run(ctx context.Context, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, prog), args...)
	cmd.Dir = c.dir
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(s string) bool {
		return strings.HasPrefix(s, "PG") || strings.HasPrefix(s, "LC_") || strings.HasPrefix(s, "LANG=")
	}), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", prog, strings.Join(args, " "), err, tail(out, 2000))
	}
	return nil
}

// url is the connection string of the cluster's default database.
func (c *pgCluster) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// stop stops the server and removes the cluster.
func (c *pgCluster) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := c.run(ctx, "pg_ctl", "-D", c.dir, "-m", "fast", "-w", "stop")
	c.logf("postgres: stopped; removing %s", c.dir)
	return errors.Join(err, c.remove())
}

func (c *pgCluster) remove() error { return os.RemoveAll(c.dir) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
