//! RDS's preflight: engine version and class orderable as asked (`rds:DescribeOrderableDBInstanceOptions`),
//! for instances and for Aurora clusters' instances.

use crate::aws::Aws;
use crate::aws::preflight::{Changes, Preflight, text};
use crate::model::Urn;
use serde_json::Value;
use std::collections::BTreeMap;

/// RDS engine version and class, orderable as asked (Multi-AZ, storage type).
pub(crate) async fn preflight(aws: &Aws, changes: &Changes<'_>, pf: &mut Preflight) {
    // (engine, version, class) → the resources asking, with their Multi-AZ and storage type (an
    // Aurora instance's storage is the cluster's: not asked).
    type Users = Vec<(Urn, bool, Option<String>)>;
    let mut asked: BTreeMap<(String, String, String), Users> = BTreeMap::new();
    for (urn, i) in changes.of(super::cluster::CLUSTER_INSTANCE) {
        if let (Some(engine), Some(version), Some(class)) =
            (text(i, "engine"), text(i, "engine_version"), text(i, "instance_class"))
        {
            asked.entry((engine.into(), version.into(), class.into())).or_default().push((urn.clone(), false, None));
        }
    }
    for (urn, i) in changes.of(super::INSTANCE) {
        let (Some(engine), Some(version), Some(class)) =
            (text(i, "engine"), text(i, "engine_version"), text(i, "instance_class"))
        else {
            continue;
        };
        let multi_az = i.get("multi_az").and_then(Value::as_bool).unwrap_or(false);
        let storage = Some(text(i, "storage_type").unwrap_or("gp3").to_string());
        asked.entry((engine.into(), version.into(), class.into())).or_default().push((urn.clone(), multi_az, storage));
    }
    for ((engine, version, class), users) in asked {
        pf.checked.push(format!("RDS {engine} {version} on {class}"));
        let options = aws
            .rds
            .describe_orderable_db_instance_options()
            .engine(&engine)
            .engine_version(&version)
            .db_instance_class(&class)
            .send()
            .await;
        let listed = match options {
            Ok(o) => o.orderable_db_instance_options().to_vec(),
            Err(e) => {
                pf.skip(aws, &format!("RDS {engine} {version} on {class}"), "DescribeOrderableDBInstanceOptions", &e);
                continue;
            }
        };
        if listed.is_empty() && aws.emulator {
            // The emulator's catalogue of orderable options is a sample of AWS's (none for
            // `postgres`, `aurora-postgresql` up to 15.2): what it does not list, it cannot judge.
            pf.skipped.push(format!(
                "RDS {engine} {version} on {class} (the local emulator's orderable-options data does not list it)"
            ));
            continue;
        }
        // Filtered here too: the emulator answers for the version whatever the class asked.
        let options: Vec<_> = listed.into_iter().filter(|o| o.db_instance_class().is_none_or(|c| c == class)).collect();
        for (urn, multi_az, storage) in users {
            if options.is_empty() {
                pf.problem(
                    &urn,
                    "instance_class",
                    format!("{engine} {version} cannot be ordered on {class} in this region"),
                    format!("choose another class (`db.r6g.large`, `db.t4g.medium`) or engine version; `aws rds describe-orderable-db-instance-options --engine {engine} --engine-version <v>` lists them"),
                );
            } else if multi_az && !options.iter().any(|o| o.multi_az_capable() == Some(true)) {
                pf.problem(
                    &urn,
                    "multi_az",
                    format!("{engine} {version} on {class} cannot be Multi-AZ here"),
                    "choose another class, or turn Multi-AZ off".into(),
                );
            } else if let Some(storage) = storage
                && !options.iter().any(|o| o.storage_type() == Some(storage.as_str()))
            {
                pf.problem(
                    &urn,
                    "storage_type",
                    format!("{engine} {version} on {class} does not offer storage type `{storage}`"),
                    "use `gp3` or `io1`".into(),
                );
            }
        }
    }
}
