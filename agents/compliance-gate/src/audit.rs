//! The audit log's tamper evidence: per partition, a hash chain over every decision and
//! every erasure receipt (each link commits to the one before it), sealed now and then by a checkpoint signed
//! with Ed25519 that commits to the chain's head and length. A regulator holding the
//! public key can walk the log and find the first altered, missing, reordered or forged
//! record; nobody can rewrite history without the signing key, since a rewritten chain
//! no longer ends at the head a checkpoint signed.
//!
//! What a link hashes is its own canonical encoding (domain tag, partition, sequence,
//! previous hash, kind, body), not the bytes of whatever topic carries it, so the chain
//! survives a change of record schema. Ed25519 signatures are deterministic (RFC 8032),
//! so a replayed checkpoint is the same bytes and a replay never forks the chain.

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The previous hash of a partition's first link.
pub const GENESIS: Hash = [0; 32];

const DOMAIN: &[u8] = b"loyalty-swarm audit-log v1";

/// What a link records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A decision, in its canonical bytes (the gate's encoding of the audited record).
    Decision(Vec<u8>),
    Checkpoint(Checkpoint),
    /// An agent's erasure receipt, in its canonical bytes.
    Receipt(Vec<u8>),
}

/// A signed statement that the partition's chain had `count` decisions ending at
/// `head` (the hash of the link at `head_sequence`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub head_sequence: u64,
    pub head: Hash,
    pub count: u64,
    pub signature: [u8; 64],
}

/// One link of a partition's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub partition: i32,
    /// 0, 1, 2, … per partition, checkpoints included.
    pub sequence: u64,
    pub previous: Hash,
    pub body: Body,
    /// SHA-256 of the link's canonical encoding.
    pub hash: Hash,
}

/// The canonical hash of a link's content.
pub fn link_hash(partition: i32, sequence: u64, previous: &Hash, body: &Body) -> Hash {
    let mut digest = Sha256::new();
    digest.update(DOMAIN);
    digest.update(partition.to_be_bytes());
    digest.update(sequence.to_be_bytes());
    digest.update(previous);
    match body {
        Body::Decision(bytes) => {
            digest.update([0]);
            digest.update((bytes.len() as u64).to_be_bytes());
            digest.update(bytes);
        }
        Body::Checkpoint(c) => {
            digest.update([1]);
            digest.update(c.head_sequence.to_be_bytes());
            digest.update(c.head);
            digest.update(c.count.to_be_bytes());
            digest.update(c.signature);
        }
        Body::Receipt(bytes) => {
            digest.update([2]);
            digest.update((bytes.len() as u64).to_be_bytes());
            digest.update(bytes);
        }
    }
    digest.finalize().into()
}

/// What a checkpoint's signature covers.
fn sealed(partition: i32, head_sequence: u64, head: &Hash, count: u64) -> Vec<u8> {
    let mut bytes = DOMAIN.to_vec();
    bytes.extend(b" checkpoint");
    bytes.extend(partition.to_be_bytes());
    bytes.extend(head_sequence.to_be_bytes());
    bytes.extend(head);
    bytes.extend(count.to_be_bytes());
    bytes
}

/// A partition's chain as its writer keeps it (in the gate's state, so a restart or a
/// new owner continues it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Chain {
    pub partition: i32,
    pub next_sequence: u64,
    pub head: Hash,
    /// Decisions so far.
    pub count: u64,
}

impl Chain {
    pub fn new(partition: i32) -> Self {
        Chain {
            partition,
            next_sequence: 0,
            head: GENESIS,
            count: 0,
        }
    }

    fn append(&mut self, body: Body) -> Link {
        let sequence = self.next_sequence;
        let hash = link_hash(self.partition, sequence, &self.head, &body);
        let link = Link {
            partition: self.partition,
            sequence,
            previous: self.head,
            body,
            hash,
        };
        self.next_sequence += 1;
        self.head = hash;
        link
    }

    /// Append a decision.
    pub fn decision(&mut self, canonical: Vec<u8>) -> Link {
        self.count += 1;
        self.append(Body::Decision(canonical))
    }

    /// Append an erasure receipt (not a decision: checkpoints count decisions).
    pub fn receipt(&mut self, canonical: Vec<u8>) -> Link {
        self.append(Body::Receipt(canonical))
    }

    /// Seal the chain as it stands.
    pub fn checkpoint(&mut self, key: &SigningKey) -> Link {
        let head_sequence = self.next_sequence.saturating_sub(1);
        let signature = key
            .sign(&sealed(
                self.partition,
                head_sequence,
                &self.head,
                self.count,
            ))
            .to_bytes();
        let checkpoint = Checkpoint {
            head_sequence,
            head: self.head,
            count: self.count,
            signature,
        };
        self.append(Body::Checkpoint(checkpoint))
    }
}

/// Why a partition's log does not verify, at the first link that shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The link's content does not hash to its stored hash: altered in place.
    Altered,
    /// Sequences jump: links were deleted before this one.
    Missing { expected: u64 },
    /// The sequence is out of order: links were moved or duplicated.
    Reordered { expected: u64 },
    /// The link does not commit to the one before it (inserted, or its neighbour
    /// replaced).
    BrokenLink,
    /// A checkpoint's signature does not verify under the key.
    ForgedCheckpoint,
    /// A validly signed checkpoint names another head or count than the chain before
    /// it has: the chain was rewritten since it was sealed.
    Rewritten,
    /// A link filed under another partition.
    WrongPartition { found: i32 },
    /// A sequence already read, with other content: a second history.
    Forked,
}

/// Where the log broke: the link's index in the partition as read, and its sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenAt {
    pub index: usize,
    pub sequence: u64,
    pub reason: Break,
}

/// A partition that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub decisions: u64,
    pub checkpoints: u64,
    /// Decisions after the last checkpoint: chained, not yet sealed.
    pub unsealed: u64,
    /// Links written again, identical, by a replay (`effectively_once` after a crash).
    pub replayed: u64,
    /// Erasure receipts chained.
    pub receipts: u64,
    /// The chain as it stands after the last link: what a gate continues.
    pub chain: Chain,
}

/// Walk one partition's links in log order.
///
/// A replay under `effectively_once` writes the links of the batches it handles again,
/// byte for byte, from where the committed state left off: a run of links each equal to
/// the one already read at its sequence, continuing in order until the chain goes on.
/// Such a run is skipped and counted; a link that repeats a sequence with other content,
/// or a repeat that does not continue in order, is reported.
pub fn verify(partition: i32, links: &[Link], key: &VerifyingKey) -> Result<Verified, BrokenAt> {
    let mut head = GENESIS;
    // Every link's hash by sequence, to recognise a replayed one.
    let mut hashes: Vec<Hash> = Vec::new();
    let mut decisions = 0u64;
    let mut checkpoints = 0u64;
    let mut sealed_decisions = 0u64;
    let mut replayed = 0u64;
    let mut receipts = 0u64;
    // Inside a replay run: the sequence the run must continue with.
    let mut replaying: Option<u64> = None;
    for (index, link) in links.iter().enumerate() {
        let expected = hashes.len() as u64;
        let broken = |reason| BrokenAt {
            index,
            sequence: link.sequence,
            reason,
        };
        if link.partition != partition {
            return Err(broken(Break::WrongPartition {
                found: link.partition,
            }));
        }
        if link_hash(partition, link.sequence, &link.previous, &link.body) != link.hash {
            return Err(broken(Break::Altered));
        }
        if let Some(next) = replaying
            && next < expected
        {
            if link.sequence != next {
                return Err(broken(Break::Reordered { expected: next }));
            }
            if hashes.get(next as usize) != Some(&link.hash) {
                return Err(broken(Break::Forked));
            }
            replayed += 1;
            replaying = Some(next + 1);
            continue;
        }
        replaying = None;
        if link.sequence < expected {
            // The start of a replay run, if it repeats the link at its sequence.
            return match hashes.get(link.sequence as usize) {
                Some(h) if *h == link.hash => {
                    replayed += 1;
                    replaying = Some(link.sequence + 1);
                    continue;
                }
                _ => Err(broken(Break::Forked)),
            };
        }
        if link.sequence > expected {
            // The expected link later on means it was moved; nowhere, deleted.
            let moved = links[index + 1..].iter().any(|l| l.sequence == expected);
            return Err(broken(if moved {
                Break::Reordered { expected }
            } else {
                Break::Missing { expected }
            }));
        }
        if link.previous != head {
            return Err(broken(Break::BrokenLink));
        }
        match &link.body {
            Body::Decision(_) => decisions += 1,
            Body::Receipt(_) => receipts += 1,
            Body::Checkpoint(c) => {
                let signature = Signature::from_bytes(&c.signature);
                let message = sealed(partition, c.head_sequence, &c.head, c.count);
                if key.verify(&message, &signature).is_err() {
                    return Err(broken(Break::ForgedCheckpoint));
                }
                if c.head != head || c.count != decisions || c.head_sequence + 1 != link.sequence {
                    return Err(broken(Break::Rewritten));
                }
                checkpoints += 1;
                sealed_decisions = decisions;
            }
        }
        head = link.hash;
        hashes.push(link.hash);
    }
    Ok(Verified {
        decisions,
        checkpoints,
        unsealed: decisions - sealed_decisions,
        replayed,
        receipts,
        chain: Chain {
            partition,
            next_sequence: hashes.len() as u64,
            head,
            count: decisions,
        },
    })
}

/// The chain a gate continues when it starts a partition with no chain head of its own
/// (its state lost, or restarted from empty over an existing log), and the decisions
/// since the last checkpoint. Continuing the log's chain, rather than starting a second
/// one at sequence 0, keeps the log verifiable after a restart that no longer decides
/// what it once did (the proposals of erased members are dropped). A log that does not
/// verify is continued after its last link all the same: the break stays where it is,
/// for `swarm audit verify` to report, and the gate does not stop over it.
pub fn resume(partition: i32, links: &[Link], key: &VerifyingKey) -> (Chain, u64) {
    if let Ok(verified) = verify(partition, links, key) {
        return (verified.chain, verified.unsealed);
    }
    let Some(last) = links.iter().max_by_key(|l| l.sequence) else {
        return (Chain::new(partition), 0);
    };
    let decisions = links
        .iter()
        .filter(|l| matches!(l.body, Body::Decision(_)))
        .map(|l| l.sequence)
        .collect::<std::collections::BTreeSet<_>>();
    let sealed = links
        .iter()
        .filter(|l| matches!(l.body, Body::Checkpoint(_)))
        .map(|l| l.sequence)
        .max();
    let unsealed = decisions
        .iter()
        .filter(|s| sealed.is_none_or(|c| **s > c))
        .count();
    (
        Chain {
            partition,
            next_sequence: last.sequence + 1,
            head: last.hash,
            count: decisions.len() as u64,
        },
        unsealed as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    /// Ten decisions, a checkpoint after the fifth and after the tenth, two unsealed.
    fn log() -> Vec<Link> {
        let key = key();
        let mut chain = Chain::new(3);
        let mut links = Vec::new();
        for i in 0..12u8 {
            links.push(chain.decision(vec![b'd', i]));
            if i == 4 || i == 9 {
                links.push(chain.checkpoint(&key));
            }
        }
        links
    }

    fn check(links: &[Link]) -> Result<Verified, BrokenAt> {
        verify(3, links, &key().verifying_key())
    }

    #[test]
    fn an_intact_log_verifies() {
        let links = log();
        let last = links.last().expect("links");
        assert_eq!(
            check(&links),
            Ok(Verified {
                decisions: 12,
                checkpoints: 2,
                unsealed: 2,
                replayed: 0,
                receipts: 0,
                chain: Chain {
                    partition: 3,
                    next_sequence: 14,
                    head: last.hash,
                    count: 12,
                },
            })
        );
        // Deterministic: the same decisions chain and sign to the same bytes.
        assert_eq!(log(), log());
    }

    #[test]
    fn a_gate_without_a_head_continues_the_chain_in_the_log() {
        let key = key();
        let links = log();
        let (mut chain, unsealed) = resume(3, &links, &key.verifying_key());
        assert_eq!((chain.next_sequence, chain.count, unsealed), (14, 12, 2));
        // What it appends next, a decision and a checkpoint sealing all 13, verifies.
        let mut continued = links.clone();
        continued.push(chain.decision(b"after the restart".to_vec()));
        continued.push(chain.checkpoint(&key));
        let verified = check(&continued).expect("one chain");
        assert_eq!((verified.decisions, verified.unsealed), (13, 0));
        // A broken log is continued after its last link; the break stays reported.
        let mut broken = log();
        broken.remove(4);
        let (chain, unsealed) = resume(3, &broken, &key.verifying_key());
        assert_eq!((chain.next_sequence, chain.count, unsealed), (14, 11, 2));
        // An empty log: a new chain.
        assert_eq!(resume(3, &[], &key.verifying_key()), (Chain::new(3), 0));
    }

    #[test]
    fn erasure_receipts_are_links_like_decisions() {
        let key = key();
        let mut links = log();
        let (mut chain, _) = resume(3, &links, &key.verifying_key());
        links.push(chain.receipt(b"receipt r-1".to_vec()));
        links.push(chain.decision(b"after it".to_vec()));
        links.push(chain.checkpoint(&key));
        let verified = check(&links).expect("intact");
        assert_eq!(
            (verified.decisions, verified.receipts, verified.unsealed),
            (13, 1, 0)
        );
        // A receipt altered, or taken out, is caught like a decision.
        let mut altered = links.clone();
        altered[14].body = Body::Receipt(b"receipt r-2".to_vec());
        assert_eq!(check(&altered).unwrap_err().reason, Break::Altered);
        let mut deleted = links.clone();
        deleted.remove(14);
        assert_eq!(
            check(&deleted).unwrap_err().reason,
            Break::Missing { expected: 14 }
        );
    }

    #[test]
    fn an_altered_record_is_caught_where_it_is() {
        let mut links = log();
        links[7].body = Body::Decision(b"approved instead".to_vec());
        let broken = check(&links).unwrap_err();
        assert_eq!((broken.index, broken.reason), (7, Break::Altered));
    }

    #[test]
    fn a_deleted_record_is_caught_at_the_gap() {
        let mut links = log();
        links.remove(4);
        let broken = check(&links).unwrap_err();
        assert_eq!(
            (broken.index, broken.reason),
            (4, Break::Missing { expected: 4 })
        );
    }

    #[test]
    fn reordered_records_are_caught_where_the_order_breaks() {
        let mut links = log();
        links.swap(2, 3);
        let broken = check(&links).unwrap_err();
        assert_eq!((broken.index, broken.sequence), (2, 3));
        assert_eq!(broken.reason, Break::Reordered { expected: 2 });
        // A copy of one link that does not continue as a replay would.
        let mut links = log();
        links.insert(6, links[3].clone());
        let broken = check(&links).unwrap_err();
        assert_eq!(
            (broken.index, broken.reason),
            (7, Break::Reordered { expected: 4 })
        );
    }

    #[test]
    fn a_replay_writing_the_same_links_again_verifies() {
        // effectively_once after a crash: the links from sequence 5 on written again.
        let original = log();
        let mut links = original[..9].to_vec();
        links.extend(original[5..].iter().cloned());
        let verified = check(&links).expect("a replay is not a break");
        assert_eq!((verified.decisions, verified.replayed), (12, 4));
    }

    #[test]
    fn a_second_history_at_a_sequence_already_read_is_a_fork() {
        let original = log();
        let mut other = Chain::new(3);
        let mut second = Vec::new();
        for i in 0..6u8 {
            let body = if i == 4 { vec![b'x'] } else { vec![b'd', i] };
            second.push(other.decision(body));
        }
        let mut links = original[..8].to_vec();
        // Links 0-3 agree; the other history's link 4 differs.
        links.extend(second[..5].iter().cloned());
        let broken = check(&links).unwrap_err();
        assert_eq!((broken.index, broken.reason), (12, Break::Forked));
    }

    #[test]
    fn a_forged_record_is_caught_at_it_or_at_the_checkpoint_that_sealed_the_original() {
        // Forged in place with a hash that fits its own content: it no longer links on.
        let mut links = log();
        let forged = Body::Decision(b"forged".to_vec());
        links[2].hash = link_hash(3, 2, &links[2].previous, &forged);
        links[2].body = forged;
        let broken = check(&links).unwrap_err();
        assert_eq!((broken.index, broken.reason), (3, Break::BrokenLink));
        // Forged, and every later link re-chained to hide it: the first checkpoint
        // after it signed another head.
        let mut links = log();
        links[2].body = Body::Decision(b"forged".to_vec());
        let mut head = links[1].hash;
        for link in links.iter_mut().skip(2) {
            link.previous = head;
            link.hash = link_hash(3, link.sequence, &link.previous, &link.body);
            head = link.hash;
        }
        let broken = check(&links).unwrap_err();
        assert_eq!((broken.index, broken.reason), (5, Break::Rewritten));
    }

    #[test]
    fn a_checkpoint_signed_with_another_key_is_forged() {
        let mut links = log();
        let impostor = SigningKey::from_bytes(&[9; 32]);
        let Body::Checkpoint(c) = &links[5].body else {
            panic!("the sixth link is a checkpoint");
        };
        let mut c = c.clone();
        c.signature = impostor
            .sign(&sealed(3, c.head_sequence, &c.head, c.count))
            .to_bytes();
        let body = Body::Checkpoint(c);
        links[5].hash = link_hash(3, 5, &links[5].previous, &body);
        links[5].body = body;
        let broken = check(&links).unwrap_err();
        assert_eq!((broken.index, broken.reason), (5, Break::ForgedCheckpoint));
    }

    #[test]
    fn a_link_of_another_partition_is_caught() {
        let mut links = log();
        links[1].partition = 4;
        let broken = check(&links).unwrap_err();
        assert_eq!(broken.reason, Break::WrongPartition { found: 4 });
    }
}
