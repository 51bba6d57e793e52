// compose-check loads a Compose file the way `docker compose config` does, with the Compose
// Specification's own loader (github.com/compose-spec/compose-go/v2, the library Docker Compose
// is built on): it parses the file, validates it against the compose-spec JSON schema,
// interpolates every variable (a `${VAR:?…}` left unset is an error), normalises the model and
// checks its consistency (references to undefined services, networks, volumes, configs,
// secrets). No Docker engine is involved. scripts/check-compose.sh builds it when no Docker
// Compose is installed: it builds in about a minute, where Docker Compose itself takes nine.
//
// It takes the subset of Docker Compose's command line that check-compose.sh uses:
//
//	compose-check [--project-directory DIR] [--env-file FILE]… [--profile NAME]… -f FILE… config [-q]
//	compose-check version [--short]
//
// COMPOSE_PROFILES selects profiles as it does for Docker Compose.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const loaderModule = "github.com/compose-spec/compose-go/v2"

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	var files, envFiles, profiles repeated
	var projectDir string
	global := flag.NewFlagSet("compose-check", flag.ContinueOnError)
	global.Var(&files, "f", "Compose file (repeatable)")
	global.Var(&files, "file", "Compose file (repeatable)")
	global.Var(&envFiles, "env-file", "environment file for interpolation (repeatable)")
	global.Var(&profiles, "profile", "profile to enable (repeatable)")
	global.StringVar(&projectDir, "project-directory", "", "project directory (default: the first file's)")
	if err := global.Parse(args); err != nil {
		return err
	}
	command := global.Args()
	if len(command) == 0 {
		return errors.New("usage: compose-check [--project-directory DIR] [--env-file FILE] [--profile NAME] -f FILE config [-q] | version [--short]")
	}
	sub := flag.NewFlagSet(command[0], flag.ContinueOnError)
	switch command[0] {
	case "version":
		short := sub.Bool("short", false, "print the loader's version only")
		if err := sub.Parse(command[1:]); err != nil {
			return err
		}
		version := loaderVersion()
		if *short {
			fmt.Println(strings.TrimPrefix(version, "v"))
		} else {
			fmt.Printf("compose-check (%s %s)\n", loaderModule, version)
		}
		return nil
	case "config":
		quiet := sub.Bool("q", false, "only validate, print nothing")
		sub.BoolVar(quiet, "quiet", false, "only validate, print nothing")
		if err := sub.Parse(command[1:]); err != nil {
			return err
		}
		if len(files) == 0 {
			return errors.New("compose-check: no Compose file (-f FILE)")
		}
		project, err := load(files, envFiles, profiles, projectDir)
		if err != nil {
			return err
		}
		out, err := project.MarshalYAML()
		if err != nil {
			return err
		}
		if !*quiet {
			_, err = os.Stdout.Write(out)
		}
		return err
	default:
		return fmt.Errorf("compose-check: unknown command %q (config or version)", command[0])
	}
}

// load mirrors what `docker compose config` does before printing the model.
func load(files, envFiles, profiles []string, projectDir string) (*types.Project, error) {
	options, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(projectDir),
		cli.WithOsEnv,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(profiles...),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithDiscardEnvFile,
	)
	if err != nil {
		return nil, err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	// Reads every service's env_file and label_file: a missing one is an error, as in Compose.
	if project, err = project.WithServicesEnvironmentResolved(true); err != nil {
		return nil, err
	}
	if project, err = project.WithServicesLabelsResolved(true); err != nil {
		return nil, err
	}
	if err = project.CheckContainerNameUnicity(); err != nil {
		return nil, err
	}
	return project, nil
}

func loaderVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == loaderModule {
				return dep.Version
			}
		}
	}
	return "(unknown)"
}
