package config

import (
	"flag"
	"io"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestSettingsTable checks the rules each row must keep for Register,
// Validate and the README to read it correctly.
func TestSettingsTable(t *testing.T) {
	envs, flags := map[string]bool{}, map[string]bool{}
	for _, s := range Settings {
		t.Run(s.Env+s.Flag, func(t *testing.T) {
			bound := s.str != nil || s.boolean != nil
			for _, tt := range []struct {
				broken bool
				why    string
			}{
				{s.Env == "" && s.Flag == "", "neither a variable nor a flag"},
				{s.Env != "" && envs[s.Env], "variable listed twice"},
				{s.Flag != "" && flags[s.Flag], "flag listed twice"},
				{s.Doc == "", "no Doc"},
				{strings.ContainsAny(s.Doc+s.DefaultNote+s.Default, "|\n"), "a | or a line break would break the README's table"},
				{bound == (s.ReadBy != ""), "either Config holds it or ReadBy says who reads it"},
				{s.str != nil && s.boolean != nil, "both a string and a boolean field"},
				{s.Flag != "" && !bound, "a flag that fills no field"},
				{s.Secret && s.Flag != "" && s.Env != "DATABASE_URL", "a secret with a flag would show in ps"},
				{s.Bool != (s.boolean != nil), "Bool and the boolean field disagree"},
				{s.Bool && s.Default != "true" && s.Default != "false", "a Bool's default is true or false"},
				{bits.OnesCount(uint(s.Need)) > 1, "Need names more than one part"},
				{s.Deploy && s.Need == 0, "Deploy without a Need: no subcommand would be held to it"},
				{s.check != nil && s.Need == 0, "a check without a Need never runs"},
				{s.EmptyIsValue && s.Env == "", "EmptyIsValue without a variable"},
			} {
				if tt.broken {
					t.Errorf("%+v: %s", s, tt.why)
				}
			}
			envs[s.Env], flags[s.Flag] = s.Env != "", s.Flag != ""
		})
	}
	for name, need := range CommandNeeds {
		if need == 0 {
			t.Errorf("CommandNeeds[%q] is empty", name)
		}
	}
}

// clearEnv unsets every variable of the table until the test ends.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, s := range Settings {
		if s.Env != "" {
			t.Setenv(s.Env, "")
			os.Unsetenv(s.Env)
		}
	}
}

// field returns the value Config holds for a bound row.
func field(c *Config, s Setting) string {
	if s.boolean != nil {
		return strconv.FormatBool(*s.boolean(c))
	}
	return *s.str(c)
}

// TestRegisterPrecedence checks every row bound to Config: unset, it takes
// the table's default; its variable wins over the default, and its flag over
// the variable.
func TestRegisterPrecedence(t *testing.T) {
	for _, s := range Settings {
		if s.str == nil && s.boolean == nil {
			continue
		}
		envVal, flagVal := "from-env", "from-flag"
		if s.Bool {
			envVal, flagVal = "true", "false"
		}
		tests := []struct {
			name      string
			env, args []string
			want      string
		}{
			{"default", nil, nil, s.Default},
			{"variable", []string{s.Env, envVal}, nil, envVal},
			{"flag", []string{s.Env, envVal}, []string{"-" + s.Flag + "=" + flagVal}, flagVal},
		}
		for _, tt := range tests {
			if (tt.env != nil && s.Env == "") || (tt.args != nil && s.Flag == "") {
				continue
			}
			t.Run(s.Env+s.Flag+"/"+tt.name, func(t *testing.T) {
				clearEnv(t)
				if tt.env != nil {
					t.Setenv(tt.env[0], tt.env[1])
				}
				var c Config
				fs := flag.NewFlagSet("x", flag.ContinueOnError)
				fs.SetOutput(io.Discard)
				c.Register(fs)
				if err := fs.Parse(tt.args); err != nil {
					t.Fatal(err)
				}
				if got := field(&c, s); got != tt.want {
					t.Errorf("got %q, want %q", got, tt.want)
				}
				if f := fs.Lookup(s.Flag); s.Flag != "" && (f == nil || !strings.Contains(f.Usage, s.Env)) {
					t.Errorf("flag --%s: %+v; want it registered, its usage naming %s", s.Flag, f, s.Env)
				}
			})
		}
	}
}

// TestFlagsAreTheTable checks that Register adds exactly the table's flags:
// nothing else, a secret least of all, reaches the command line.
func TestFlagsAreTheTable(t *testing.T) {
	clearEnv(t)
	var c Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.Register(fs)
	want := map[string]bool{}
	for _, s := range Settings {
		if s.Flag != "" {
			want[s.Flag] = true
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !want[f.Name] {
			t.Errorf("flag --%s is not in Settings", f.Name)
		}
		delete(want, f.Name)
	})
	if len(want) > 0 {
		t.Errorf("flags of Settings not registered: %v", want)
	}
}
