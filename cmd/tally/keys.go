package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// Station keys (CONTRACT §7) are nkey user key pairs: the seed ("SU...")
// stays with the polling group and signs its minutes; the public key
// ("U...") goes into the election file as the station's "seal". A seed file
// holds the seed on a line of its own, the form nats.go's
// nats.NkeyOptionFromSeed also reads, so the same file can later be the
// station's NATS identity.

const keysUsage = `Usage: tally keys <command> [flags]

Makes the station key pairs that seal count minutes (CONTRACT §7). A seed
(SU...) signs a station's minutes and is secret; its public key (U...) is
the station's "seal" in the election file.

Commands:
  new     print a new key pair (or write the seed to a file)
  seal    give every station of an election file a key pair: writes the
          sealed election file and one seed file per station
  public  print the public key of a seed file

Run 'tally keys <command> --help' for a command's flags.
`

func runKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			return runKeys([]string{args[1], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, keysUsage)
		return exitOK
	case "new":
		return runKeysNew(args[1:], stdout, stderr)
	case "seal":
		return runKeysSeal(args[1:], stdout, stderr)
	case "public":
		return runKeysPublic(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "tally keys: unknown command %q\n\n%s", args[0], keysUsage)
	return exitUsage
}

const seedWarning = "The seed is secret: whoever holds it can sign minutes for the station.\nKeep it only where the station signs, in a file only it can read (mode 0600).\n"

func runKeysNew(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("keys new", "[--seed-file FILE [--force]]",
		`Prints a new station key pair: the seed first, on a line "seed: SU...",
then the public key, "public: U...", to put in the election file as the
station's "seal". With --seed-file the seed goes to FILE instead (mode
0600, on a line of its own) and only the public key is printed.`, stdout, stderr)
	seedFile := fs.String("seed-file", "", "write the seed to this file (mode 0600) instead of printing it")
	force := fs.Bool("force", false, "overwrite an existing seed file")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected arguments %q", fs.Args())
	}
	if *force && *seedFile == "" {
		return usageError(fs, "--force goes with --seed-file")
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		fmt.Fprintf(stderr, "tally keys new: %v\n", err)
		return exitFailed
	}
	defer kp.Wipe()
	seed, err1 := kp.Seed()
	pub, err2 := kp.PublicKey()
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintf(stderr, "tally keys new: %v\n", err)
		return exitFailed
	}
	if *seedFile != "" {
		if err := writeFile(*seedFile, append(seed, '\n'), 0o600, *force); err != nil {
			fmt.Fprintf(stderr, "tally keys new: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "public: %s\n", pub)
		fmt.Fprintf(stderr, "seed written to %s\n%s", *seedFile, seedWarning)
		return exitOK
	}
	fmt.Fprintf(stdout, "seed: %s\npublic: %s\n", seed, pub)
	fmt.Fprint(stderr, seedWarning)
	return exitOK
}

func runKeysPublic(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("keys public", "SEEDFILE",
		`Prints the public key (U...) of the seed in SEEDFILE: the "seal" the
election file must give the station that signs with it.`, stdout, stderr)
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(fs, "give one seed file")
	}
	seed, err := readSeedFile(fs.Arg(0), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tally keys public: %v\n", err)
		return exitFailed
	}
	pub, err := seedPublicKey(seed)
	if err != nil {
		fmt.Fprintf(stderr, "tally keys public: %s: %v\n", fs.Arg(0), err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "public: %s\n", pub)
	return exitOK
}

func runKeysSeal(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("keys seal", "--election FILE --out DIR [--force]",
		`Generates one key pair per station of the election FILE and writes
  DIR/election.json          FILE with every station's "seal" set to its new
                             public key and nothing else changed (same
                             members, order, spacing); seals FILE already
                             has are replaced
  DIR/seeds/<station>.seed   each station's seed, mode 0600 (DIR/seeds 0700)
Hand each polling group only its own seed file: with it, it signs its
minutes (tally submit --seal). Existing files are not overwritten unless
--force is given.`, stdout, stderr)
	electionFile := fs.String("election", "", "election file; required")
	outDir := fs.String("out", "", "output directory; required")
	force := fs.Bool("force", false, "overwrite existing output files")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if *electionFile == "" || *outDir == "" {
		return usageError(fs, "--election and --out are required")
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected arguments %q", fs.Args())
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "tally keys seal: "+format+"\n", args...)
		return exitFailed
	}
	e, err := loadElection(*electionFile)
	if err != nil {
		return fail("%v", err)
	}
	raw, err := os.ReadFile(*electionFile)
	if err != nil {
		return fail("%v", err)
	}
	electionOut := filepath.Join(*outDir, "election.json")
	seedDir := filepath.Join(*outDir, "seeds")
	seedPath := func(station string) string { return filepath.Join(seedDir, station+".seed") }
	if !*force {
		var exist []string
		for _, p := range append([]string{electionOut}, stationPaths(e, seedPath)...) {
			if _, err := os.Lstat(p); err == nil || !errors.Is(err, os.ErrNotExist) {
				exist = append(exist, p)
			}
		}
		if len(exist) > 0 {
			first := exist[0]
			if len(exist) > 1 {
				first += ", ..."
			}
			return fail("refusing to overwrite %d existing files (%s); give --force to replace them, which makes every station's old seed useless", len(exist), first)
		}
	}

	seeds := make([][]byte, len(e.Stations))
	seals := make([]string, len(e.Stations))
	defer func() {
		for _, s := range seeds {
			clear(s)
		}
	}()
	replaced := 0
	for i := range e.Stations {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return fail("%v", err)
		}
		seed, err1 := kp.Seed()
		pub, err2 := kp.PublicKey()
		seed = bytes.Clone(seed) // Seed returns the key pair's own slice, which Wipe overwrites
		kp.Wipe()
		if err := errors.Join(err1, err2); err != nil {
			return fail("%v", err)
		}
		seeds[i], seals[i] = seed, pub
		if e.Stations[i].Seal != "" {
			replaced++
		}
	}
	out, err := setSeals(raw, e, seals)
	if err != nil {
		return fail("%s: %v", *electionFile, err)
	}

	if err := os.MkdirAll(seedDir, 0o700); err != nil {
		return fail("%v", err)
	}
	if err := os.Chmod(seedDir, 0o700); err != nil {
		return fail("%v", err)
	}
	for i := range e.Stations {
		if err := writeFile(seedPath(e.Stations[i].ID), append(seeds[i], '\n'), 0o600, *force); err != nil {
			return fail("%v", err)
		}
	}
	if err := writeFile(electionOut, out, 0o644, *force); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(stdout, "sealed %d stations: %s\nseeds (secret, one per station, mode 0600): %s%c<station>.seed\n",
		len(e.Stations), electionOut, seedDir, filepath.Separator)
	if replaced > 0 {
		fmt.Fprintf(stderr, "tally keys seal: replaced the seal %d stations had in %s\n", replaced, *electionFile)
	}
	return exitOK
}

func stationPaths(e *tally.Election, path func(string) string) []string {
	ps := make([]string, len(e.Stations))
	for i := range e.Stations {
		ps[i] = path(e.Stations[i].ID)
	}
	return ps
}

// setSeals returns the election file raw with the "seal" of station i set
// to seals[i], editing the bytes in place so that everything else (unknown
// members, member order, spacing, escapes) stays as it was. It checks its
// work: the result must parse to e with only the seals changed.
func setSeals(raw []byte, e *tally.Election, seals []string) ([]byte, error) {
	type edit struct {
		from, to int // raw[from:to] is replaced by text
		text     string
	}
	var edits []edit
	station := 0
	s := &jsonScanner{b: raw}
	err := s.object(func(key string) error {
		if key != "stations" {
			return s.skip()
		}
		return s.array(func() error {
			if station >= len(seals) {
				return errors.New("more stations than the election has")
			}
			var id string
			sealFrom, sealTo, lastEnd := -1, -1, -1
			err := s.object(func(key string) error {
				from := s.i
				if err := s.skip(); err != nil {
					return err
				}
				switch key {
				case "id":
					if err := json.Unmarshal(raw[from:s.i], &id); err != nil {
						return err
					}
				case "seal":
					sealFrom, sealTo = from, s.i
				}
				lastEnd = s.i
				return nil
			})
			if err != nil {
				return err
			}
			if id != e.Stations[station].ID {
				return fmt.Errorf("station %d is %q in the file, %q when parsed", station, id, e.Stations[station].ID)
			}
			quoted, _ := json.Marshal(seals[station])
			switch {
			case sealFrom >= 0:
				edits = append(edits, edit{sealFrom, sealTo, string(quoted)})
			case lastEnd >= 0:
				edits = append(edits, edit{lastEnd, lastEnd, `, "seal": ` + string(quoted)})
			default:
				return fmt.Errorf("station %d is an empty object", station)
			}
			station++
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cannot edit the file: %w", err)
	}
	if station != len(seals) {
		return nil, fmt.Errorf("cannot edit the file: found %d stations, the election has %d", station, len(seals))
	}
	var out bytes.Buffer
	at := 0
	for _, ed := range edits {
		out.Write(raw[at:ed.from])
		out.WriteString(ed.text)
		at = ed.to
	}
	out.Write(raw[at:])

	// The result is the same election with the new seals.
	got, err := tally.Parse(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("the edited file does not parse: %w", err)
	}
	want := *e
	want.Stations = append([]tally.Station(nil), e.Stations...)
	for i := range want.Stations {
		want.Stations[i].Seal = seals[i]
	}
	a, _ := json.Marshal(&want)
	b, _ := json.Marshal(got)
	if !bytes.Equal(a, b) {
		return nil, errors.New("the edited file is not the same election with seals added")
	}
	return out.Bytes(), nil
}

// jsonScanner walks JSON text already known to be valid (it parsed), to
// find where values start and end.
type jsonScanner struct {
	b []byte
	i int
}

var errScan = errors.New("unexpected JSON")

func (s *jsonScanner) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// object reads an object, calling member for each member name with the
// scanner at the start of its value; member must consume the value.
func (s *jsonScanner) object(member func(key string) error) error {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return errScan
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		from := s.i
		if err := s.str(); err != nil {
			return err
		}
		var key string
		if err := json.Unmarshal(s.b[from:s.i], &key); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return errScan
		}
		s.i++
		s.ws()
		if err := member(key); err != nil {
			return err
		}
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ',' {
			s.i++
			continue
		}
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return nil
		}
		return errScan
	}
}

// array reads an array, calling elem with the scanner at the start of each
// element; elem must consume it.
func (s *jsonScanner) array(elem func() error) error {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '[' {
		return errScan
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if err := elem(); err != nil {
			return err
		}
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ',' {
			s.i++
			continue
		}
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return nil
		}
		return errScan
	}
}

func (s *jsonScanner) str() error {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return errScan
	}
	for s.i++; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			s.i++
		case '"':
			s.i++
			return nil
		}
	}
	return errScan
}

// skip consumes one value.
func (s *jsonScanner) skip() error {
	s.ws()
	if s.i >= len(s.b) {
		return errScan
	}
	switch s.b[s.i] {
	case '{':
		return s.object(func(string) error { return s.skip() })
	case '[':
		return s.array(s.skip)
	case '"':
		return s.str()
	}
	from := s.i
	for s.i < len(s.b) && !bytes.ContainsRune([]byte(",}] \t\r\n"), rune(s.b[s.i])) {
		s.i++
	}
	if s.i == from {
		return errScan
	}
	return nil
}

// writeFile writes data to path with mode perm, refusing to replace an
// existing file unless force. A replaced file gets perm too.
func writeFile(path string, data []byte, perm os.FileMode, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, perm)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists; give --force to replace it", path)
	}
	if err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readSeedFile returns the nkey user seed in path: a line "SU...", or
// "seed: SU..." as `tally keys new` prints it (a NATS creds file works
// too). It warns on stderr when others may read the file. Errors never
// quote the file's content.
func readSeedFile(path string, stderr io.Writer) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(stderr, "tally: warning: seed file %s can be read by others (mode %04o); a seed is secret: chmod 600 %s\n", path, st.Mode().Perm(), path)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if rest, ok := bytes.CutPrefix(line, []byte("seed:")); ok {
			line = bytes.TrimSpace(rest)
		}
		if !bytes.HasPrefix(line, []byte("SU")) {
			continue
		}
		if _, err := seedPublicKey(line); err != nil {
			return nil, fmt.Errorf("%s: the line starting SU is not a valid nkey user seed", path)
		}
		return bytes.Clone(line), nil
	}
	return nil, fmt.Errorf("%s holds no nkey user seed (a line SU..., as `tally keys new` prints)", path)
}

// seedPublicKey returns the public key of an nkey user seed.
func seedPublicKey(seed []byte) (string, error) {
	prefix, _, err := nkeys.DecodeSeed(seed)
	if err != nil || prefix != nkeys.PrefixByteUser {
		return "", events.ErrNotUserSeed
	}
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return "", events.ErrNotUserSeed
	}
	defer kp.Wipe()
	return kp.PublicKey()
}

// signBody signs every minutes of a submit body (object, array or NDJSON)
// with the seed seedFor gives for its station and returns them as NDJSON,
// plus the public key that signed each. Minutes the decoder finds problems
// in are refused (a *tally.ValidationError listing them): re-encoding them
// would drop what it could not read, and sign something other than what
// the file says.
func signBody(body []byte, seedFor func(station string) ([]byte, error)) ([]byte, []string, error) {
	ds, err := events.DecodeJSON(body)
	if err != nil {
		return nil, nil, err
	}
	var problems []tally.Violation
	for _, d := range ds {
		problems = append(problems, d.Problems...)
	}
	if len(problems) > 0 {
		return nil, nil, &tally.ValidationError{Violations: problems}
	}
	var out []byte
	signers := make([]string, len(ds))
	for i := range ds {
		m := &ds[i].Minutes
		seed, err := seedFor(m.Station)
		if err != nil {
			return nil, nil, fmt.Errorf("minutes[%d] (station %q): %w", i, m.Station, err)
		}
		m.Signature, err = events.Sign(seed, m)
		if err != nil {
			return nil, nil, fmt.Errorf("minutes[%d] (station %q): %w", i, m.Station, err)
		}
		if signers[i], err = seedPublicKey(bytes.TrimSpace(seed)); err != nil {
			return nil, nil, err
		}
		out = events.AppendJSON(out, m)
		out = append(out, '\n')
	}
	return out, signers, nil
}

// seedDirSource returns the seed of each station from dir, as `tally keys
// seal --out DIR` wrote it (DIR/seeds/<station>.seed; DIR/<station>.seed
// is also looked at), reading each file once.
func seedDirSource(dir string, stderr io.Writer) func(station string) ([]byte, error) {
	cache := map[string][]byte{}
	return func(station string) ([]byte, error) {
		if seed, ok := cache[station]; ok {
			return seed, nil
		}
		// The id becomes a file name: only a valid id, never a path.
		if !tally.ValidID(station) {
			return nil, fmt.Errorf("not a valid station id, no seed file looked up")
		}
		var errs []string
		for _, p := range []string{filepath.Join(dir, "seeds", station+".seed"), filepath.Join(dir, station+".seed")} {
			seed, err := readSeedFile(p, stderr)
			if err == nil {
				cache[station] = seed
				return seed, nil
			}
			if !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			errs = append(errs, p)
		}
		return nil, fmt.Errorf("no seed file (looked for %s)", strings.Join(errs, " and "))
	}
}
