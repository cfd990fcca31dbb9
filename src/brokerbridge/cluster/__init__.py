"""A node of a brokerbridge cluster on Redis (issue 21; docs/cluster.md): the edge Bridge it serves,
the holder role per venue, the cluster's status."""
