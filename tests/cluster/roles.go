package cluster

import (
	"net/url"
	"slices"
)

// The database role each process of a cluster connects as, as in
// production (warehouse/migrations/016_process_roles.sql).

// processRoles are the database roles of the subcommands that have one.
var processRoles = map[string]string{"api": "pipeline_api", "worker": "pipeline_worker"}

// envAs is Env with DATABASE_URL's user set to role, unless the URL has a
// password.
func (c *Cluster) envAs(role string) []string {
	u, err := url.Parse(c.Getenv("DATABASE_URL"))
	if err != nil || u.User == nil {
		return c.Env
	}
	if _, has := u.User.Password(); has {
		return c.Env
	}
	u.User = url.User(role)
	return append(slices.Clone(c.Env), "DATABASE_URL="+u.String())
}
