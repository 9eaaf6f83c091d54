"""The local AWS emulator: moto's server (pinned in fabric-local's lib.rs), with two fixes.

1. Speed.

moto decides which account a request is for by searching every account's IAM backend, in every
partition (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-eusc), for the request's access key;
looking in a partition's backend creates it, with its ~1,600 AWS managed policies. So after a
start or a reset the second request spends about 1.3 s building five IAM backends of partitions
nobody uses, and every reset rebuilds all six (about 1.8 s). This looks only in the backends that
exist: a backend that does not exist holds no access key, so the answer is the same.

2. ElastiCache replication groups without cluster mode. AWS makes such a group of
NumCacheClusters nodes (the primary and its replicas); moto counts only ReplicasPerNodeGroup and
makes one node. This passes the count on as moto reads it, so the group has the nodes AWS would
give it.
"""

import sys

import moto.iam.models as iam_models
from moto.core import DEFAULT_ACCOUNT_ID


def get_account_id_from(access_key: str) -> str:
    for account_id, account in list(iam_models.iam_backends.items()):
        for partition in list(account.keys()):
            if access_key in account[partition].access_keys:
                return account_id
    return DEFAULT_ACCOUNT_ID


iam_models.get_account_id_from = get_account_id_from

import moto.elasticache.models as elasticache_models  # noqa: E402

_create_replication_group = elasticache_models.ElastiCacheBackend.create_replication_group


def create_replication_group(self, **kwargs):
    nodes = kwargs.get("num_cache_clusters")
    if kwargs.get("cluster_mode") != "enabled" and nodes and not kwargs.get("replicas_per_node_group"):
        kwargs["replicas_per_node_group"] = nodes - 1
    return _create_replication_group(self, **kwargs)


elasticache_models.ElastiCacheBackend.create_replication_group = create_replication_group

from moto.server import main  # noqa: E402  (after the fix, as moto imports the function at each request)

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
