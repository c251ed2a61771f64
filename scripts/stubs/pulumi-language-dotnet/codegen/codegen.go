// Package codegen stands in for pulumi-language-dotnet's C# code generator: the docker-build
// provider only puts a CSharpPackageInfo into its schema's language map (see ../../README.md).
package codegen

// CSharpPackageInfo holds the fields the provider sets, under the real type's JSON names.
type CSharpPackageInfo struct {
	RespectSchemaVersion bool              `json:"respectSchemaVersion,omitempty"`
	PackageReferences    map[string]string `json:"packageReferences,omitempty"`
}
