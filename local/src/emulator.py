"""The local AWS emulator: moto's server (pinned in fabric-local's lib.rs), with one fix for speed.

moto decides which account a request is for by searching every account's IAM backend, in every
partition (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-eusc), for the request's access key;
looking in a partition's backend creates it, with its ~1,600 AWS managed policies. So after a
start or a reset the second request spends about 1.3 s building five IAM backends of partitions
nobody uses, and every reset rebuilds all six (about 1.8 s). This looks only in the backends that
exist: a backend that does not exist holds no access key, so the answer is the same.
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

from moto.server import main  # noqa: E402  (after the fix, as moto imports the function at each request)

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
