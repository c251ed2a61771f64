// Package java stands in for pulumi-java's code generator: the docker-build provider only puts a
// PackageInfo into its schema's language map (see ../../../../README.md).
package java

// PackageInfo holds the fields the provider sets, under the real type's JSON names.
type PackageInfo struct {
	BuildFiles                      string            `json:"buildFiles,omitempty"`
	GradleNexusPublishPluginVersion string            `json:"gradleNexusPublishPluginVersion,omitempty"`
	Dependencies                    map[string]string `json:"dependencies,omitempty"`
}
