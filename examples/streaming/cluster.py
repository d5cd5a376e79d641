"""A mock Kafka cluster for the shell walk-throughs: prints its address, then lives
until its standard input closes (a stand-in for KAFKA_BOOTSTRAP_SERVERS)."""

from __future__ import annotations

import sys

from messaging import MockCluster

if __name__ == "__main__":
    with MockCluster() as cluster:
        print(cluster.bootstrap_servers, flush=True)
        sys.stdin.read()
