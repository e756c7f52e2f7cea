//! Lane routing: which lane a run submitted without one goes to (by weight), and the version set
//! it is stamped with at admission — what pins it: its lane never changes, and only that lane's
//! workers execute it.

use crate::v1::VersionSet;

/// The lane `roll` (any number, uniformly spread) picks among `weights` (lane, weight), in
/// proportion to the weights; `None` when every weight is 0.
pub fn pick(weights: &[(String, u32)], roll: u64) -> Option<&str> {
    let total: u64 = weights.iter().map(|(_, w)| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let mut point = roll % total;
    for (lane, weight) in weights {
        let weight = u64::from(*weight);
        if point < weight {
            return Some(lane);
        }
        point -= weight;
    }
    None
}

/// `versions` with every field the client left empty filled from the lane's: what the run is
/// stamped with.
pub fn stamp(versions: Option<VersionSet>, lane: &VersionSet) -> VersionSet {
    let mut v = versions.unwrap_or_default();
    let fill = |mine: &mut String, theirs: &str| {
        if mine.is_empty() {
            *mine = theirs.to_string();
        }
    };
    fill(&mut v.agent, &lane.agent);
    fill(&mut v.model, &lane.model);
    fill(&mut v.prompt, &lane.prompt);
    fill(&mut v.policy, &lane.policy);
    fill(&mut v.tool_schema, &lane.tool_schema);
    fill(&mut v.baton_build, &lane.baton_build);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_in_proportion_to_the_weights() {
        let weights = vec![("main".to_string(), 90), ("canary".to_string(), 10)];
        let mut canary = 0;
        for roll in 0..10_000u64 {
            // Spread like random numbers, not sequential ones.
            let roll = roll.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            if pick(&weights, roll) == Some("canary") {
                canary += 1;
            }
        }
        assert!((900..=1100).contains(&canary), "{canary} of 10000");
        assert_eq!(pick(&[("a".to_string(), 0)], 7), None);
        assert_eq!(pick(&[("a".to_string(), 0), ("b".to_string(), 3)], 7), Some("b"));
    }

    #[test]
    fn the_stamp_keeps_what_the_client_set_and_fills_the_rest_from_the_lane() {
        let client = VersionSet { model: "m-client".into(), ..Default::default() };
        let lane =
            VersionSet { model: "m2".into(), agent: "a7".into(), baton_build: "0.1.0".into(), ..Default::default() };
        let v = stamp(Some(client), &lane);
        assert_eq!((v.model.as_str(), v.agent.as_str(), v.baton_build.as_str()), ("m-client", "a7", "0.1.0"));
    }
}
