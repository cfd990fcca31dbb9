"""The cluster's Redis I/O (issue 21; docs/cluster.md): keys, the lease, event streams, interest,
orders and the journal in Redis, and the edge's `ClusterConnector`."""
