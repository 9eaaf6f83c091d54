//! The example stack with policy variants, for the policy tests (`stacks example-policy`, the
//! variant named by `FABRIC_TEST_POLICY`): a rule of the stack's own, waivers that hold, run out
//! or accept nothing, and the bad inputs a waiver or an assumption can have.

use fabric::model::Stack;
use fabric::model::policy::{PolicyView, Rule, Severity, Violations};

/// A team rule: every VPC carries a `cost-center` tag.
pub struct CostCenterTag;

impl Rule for CostCenterTag {
    fn id(&self) -> &str {
        "ACME-TAG-1"
    }
    fn severity(&self) -> Severity {
        Severity::Mandatory
    }
    fn title(&self) -> &str {
        "every VPC carries a cost-center tag"
    }
    fn check(&self, view: &PolicyView, out: &mut Violations) {
        for vpc in view.of_type("aws:ec2:Vpc") {
            if vpc.text("/tags/cost-center").is_none() {
                out.add(&vpc.urn, "tags", "the VPC has no `cost-center` tag", "tag it with the team's cost center");
            }
        }
    }
}

/// The example, then what `variant` adds.
pub fn example_policy_program(variant: &str) -> impl FnOnce(&mut Stack) -> fabric::Result<()> + use<> {
    let variant = variant.to_string();
    move |s: &mut Stack| {
        example::program(s)?;
        match variant.as_str() {
            "rule" => s.policy(CostCenterTag),
            "expired" => {
                s.policy(CostCenterTag);
                s.waive("ACME-TAG-1", "main", "tagged by the account's tag policy").until("2020-01-01");
            }
            "waived" => {
                s.policy(CostCenterTag);
                s.waive("ACME-TAG-1", "main", "tagged by the account's tag policy").until("2999-01-01");
            }
            "stale" => {
                s.waive("FAB-S3-2", "main", "versioning is the backup plan's job");
            }
            "unknown-rule" => {
                s.waive("FAB-NET-9", "main", "a rule that does not exist");
            }
            "no-reason" => {
                s.waive("FAB-NET-2", "main", "  ");
            }
            "bad-date" => s.waive("FAB-NET-2", "main", "flow logs go to the shared account").until("1 March 2027"),
            "bad-assumption" => s.assume("nat_gbs", 10.0),
            "" => {}
            other => panic!("no policy variant `{other}`"),
        }
        Ok(())
    }
}
