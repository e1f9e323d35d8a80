// Command pulumi-resource-kubernetes serves the pulumi-kubernetes provider (v4.25.0, the one
// commit of github.com/pulumi/pulumi-kubernetes/provider/v4 the Go module proxy serves).
//
// The provider's own command embeds a schema file its repository generates at release time and
// does not commit; this one embeds the same file, generated at build time from the schema.json
// the module ships (see ../../tool.env), so nothing of the provider is transcribed here.
package main

import (
	_ "embed"
	"fmt"
	"os"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var schema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	// `-version` prints the version the plugin reports to the engine, for whoever installs it
	// (`pulumi plugin install resource kubernetes VERSION --file ...`) or finds it on PATH.
	if len(os.Args) == 2 && (os.Args[1] == "-version" || os.Args[1] == "--version") {
		fmt.Println(version.Version)
		return
	}
	provider.Serve("kubernetes", version.Version, schema, terraformMapping)
}
