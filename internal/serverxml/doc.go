// Package serverxml reads Tomcat server.xml files, and the pieces of them
// users paste from documentation, into a generic element tree with source
// positions, and binds element attributes to typed values the way Tomcat's
// digester sets bean properties, but with clearer warnings.
//
// It is the layer under every wasmfarm loader of Tomcat configuration
// (tribes/tribesconfig for <Channel>, and later <Cluster>, <Engine>,
// <Connector>, <Host>, <Context>): [Parse] builds the tree, a [Binder] per
// element reads its attributes and children and turns the rest into
// "unknown attribute" warnings with did-you-mean suggestions, and a
// [Registry] maps className attributes to the loader's factories.
//
// # Leniency
//
// Tomcat parses server.xml with a strict XML parser and then ignores, with
// a log line, whatever it cannot map. Configurations copied from web pages
// are often not well-formed XML, so Parse accepts these mistakes when what
// was meant is clear, and reports a [Warning] each time:
//
//   - attributes with no blank between them: className="x"port="4000";
//   - outer blanks or a line break inside the quotes: className="x
//     " (trimmed; inner line breaks become spaces, as XML does);
//   - typographic quotes around a value: className=”x” (and “”, „“, ″, ‘’);
//   - an unquoted value without blanks: port=4000;
//   - an '&' that starts no reference (kept as written);
//   - an attribute given twice with the same value;
//   - an end tag in another case (</membership> for <Membership>), an end
//     tag that closes an outer element (the inner ones are closed there),
//     a stray end tag (ignored), elements left open at the end of the file
//     (closed there);
//   - several top-level elements (a synthetic root with an empty name
//     holds them);
//   - text between elements (prose pasted with the XML) is ignored with a
//     note, once per element.
//
// What stays ambiguous is an error ([ErrSyntax]): an unterminated tag,
// comment or value, a '<' inside a value (a missing quote, most likely), an
// attribute without '=', the same attribute with two values, a '<' that
// starts no tag. A [Binder] adds the leniency of names: an attribute or
// element whose name differs only in case (<MemberShip>, droptime) is used,
// with a warning, where Tomcat would ignore it; a misspelt one (droptTime)
// is reported with a suggestion.
//
// # Untrusted input
//
// A [Parser] refuses files over 4 MiB, elements nested deeper than 64,
// more than 10000 elements, more than 256 attributes on one element and
// element or attribute names over 256 bytes ([ErrLimit]). DOCTYPE
// declarations are skipped and their entities never expanded; only the
// five predefined entities and character references are decoded. Tomcat's
// ${property} substitution is not done.
//
// Every warning carries its element's path, and a file can hold many
// unknown elements and attributes, so warnings are bounded too: a path
// longer than 256 bytes is shortened to its last names, and the parser
// and the binders on the elements of one file make [MaxWarnings] (1000)
// warnings in all; the others are only counted. A loader hands back the
// warnings of a file through [CapWarnings], which ends them with one
// "N more warnings not shown" line. A hostile file thus costs a small
// multiple of its size, and not one warning path per unknown element.
package serverxml
