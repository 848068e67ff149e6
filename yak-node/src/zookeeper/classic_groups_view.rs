//! What the coordinator reads of Kafka classic groups without changing
//! them: the commit fence, membership, ListGroups and DescribeGroups.
//! Part of [`super`] (its private state), kept apart to keep each file small.

use super::{err, unknown_member, ClassicGroups, Phase};
use crate::protocol::classic::{DescribedGroup, DescribedMember};
use crate::protocol::{ErrorBody, ErrorCode};

impl ClassicGroups {
    /// Refuses a commit Kafka would refuse: generation `-1` with no member
    /// id only while the group has no members; otherwise a current member
    /// naming the current generation, outside `CompletingRebalance`.
    pub fn check_commit(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
    ) -> Result<(), ErrorBody> {
        let g = match self.groups.get(group) {
            Some(g) if !g.members.is_empty() => g,
            _ if generation < 0 => return Ok(()),
            _ => return Err(unknown_member(group, member_id)),
        };
        g.member(group, member_id)?;
        g.check_generation(group, generation)?;
        if matches!(g.phase, Phase::Completing { .. }) {
            return Err(err(
                ErrorCode::RebalanceInProgress,
                format!("group '{group}' is completing a rebalance"),
            ));
        }
        Ok(())
    }

    /// Whether the group has members now.
    pub fn has_members(&self, group: &str) -> bool {
        self.groups
            .get(group)
            .is_some_and(|g| !g.members.is_empty())
    }

    /// Groups with members: name, protocol type and state.
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        self.groups
            .iter()
            .filter(|(_, g)| !g.members.is_empty())
            .map(|(n, g)| (n.clone(), g.protocol_type.clone(), g.state_name()))
            .collect()
    }

    /// The group as DescribeGroups shows it, if it has members.
    pub fn describe(&self, group: &str) -> Option<DescribedGroup> {
        let g = self.groups.get(group).filter(|g| !g.members.is_empty())?;
        let protocol = match g.phase {
            Phase::Preparing { .. } => String::new(),
            _ => g.protocol.clone(),
        };
        Some(DescribedGroup {
            group: group.to_string(),
            state: g.state_name().to_string(),
            protocol_type: g.protocol_type.clone(),
            members: g
                .members
                .iter()
                .map(|(id, m)| DescribedMember {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m
                        .protocols
                        .iter()
                        .find(|p| p.name == protocol)
                        .map(|p| p.metadata.clone())
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
            protocol,
            generation: g.generation,
        })
    }
}
