//! StratusLab Marketplace: identifiers, the namespace-aware RDF/XML reader, the writer used by the
//! local cloud, and the metadata client.
