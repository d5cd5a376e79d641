# The on-call commands for Kafka, sagas and CDC (run from the repository root).
export PYTHONPATH="examples${PYTHONPATH:+:$PYTHONPATH}"
# A mock cluster in a process of its own, so that several commands share it; in
# production KAFKA_BOOTSTRAP_SERVERS names your brokers.
coproc CLUSTER { python -m streaming.cluster; }
read -r KAFKA_BOOTSTRAP_SERVERS <&"${CLUSTER[0]}"
export KAFKA_BOOTSTRAP_SERVERS
# Ledgers, orders and sagas to look at; the second line names a compensated transfer.
saga=$(python -m streaming.sagas_guide | awk 'NR == 2 {print $1}')

# --8<-- [start:relay]
chronik relay --name guide --exactly-once --until-caught-up  # a service: no --until-caught-up
chronik relay status --name guide          # checkpoint, lag, leader, counts, last error
chronik topics tail chronik.ledger --max 2 # the last 2 of each partition, decoded
# --8<-- [end:relay]


# --8<-- [start:sagas]
chronik sagas list --status compensated    # running|completed|compensated|failed|stuck
chronik sagas show "$saga"                 # its steps, timings and the events each caused
# --8<-- [end:sagas]

# --8<-- [start:cdc]
chronik cdc status                         # each slot, whether it is read, the WAL it keeps
# --8<-- [end:cdc]
exec {CLUSTER[1]}>&-  # the cluster goes with its standard input
