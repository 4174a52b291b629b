"""SLIs with ClusterLoader2's names (PodStartupLatency, SchedulingThroughput, APIResponsiveness,
NetworkProgrammingLatency, etcd request latency), as tidy DataFrames and PerfData JSON."""
