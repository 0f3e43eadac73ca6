//! The simulated organization: users, scheduled events and invitees, made
//! deterministically from a seed, with everything real Calendly data throws
//! at a client: canceled events that keep their invitees, rescheduled pairs,
//! group events (one with more than 100 invitees), null first/last names,
//! mixed-case and padded emails, the same person booking many times,
//! `location: null`, guests who are not invitees.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::calendly::model::normalize_email;

/// Invitees of the one big group event (more than a page of 100).
const BIG_GROUP_SIZE: usize = 130;

const FIRST_NAMES: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hannah", "Jonas", "Jürgen",
    "Leonie", "Lukas", "Mara", "Noah", "Özlem", "Paul", "Sophie", "Tim", "Zoë", "Emma",
];
const LAST_NAMES: &[&str] = &[
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Yılmaz",
    "O'Brien",
];
/// The organization's users: the owner (an admin, whose token the simulator
/// accepts) and members who host events.
const USERS: &[(&str, bool)] = &[
    ("Olive Owner", true),
    ("Max Mentor", false),
    ("Lea Lehrer", false),
    ("Tom Tutor", false),
];
const DOMAINS: &[&str] = &[
    "example.org",
    "mail.example.com",
    "schule.example.de",
    "web.example.net",
];
const EVENT_NAMES: &[&str] = &[
    "Nachhilfe Mathematik (60 Min)",
    "Deutsch Einzelstunde",
    "Englisch Konversation",
    "Probestunde",
    "Physik Lerngruppe",
];

/// A user of the organization (a host).
#[derive(Debug, Clone)]
pub struct SimUser {
    pub uuid: String,
    pub name: String,
    pub email: String,
    pub slug: String,
    /// Owners and admins may list the whole organization.
    pub admin: bool,
}

/// One scheduled event.
#[derive(Debug, Clone)]
pub struct SimEvent {
    pub uuid: String,
    pub name: String,
    pub canceled: bool,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub created: DateTime<Utc>,
    pub host: usize,
    pub event_type: String,
    pub location: Option<Value>,
    pub guests: Vec<String>,
    pub invitee_limit: usize,
    pub invitees: Vec<SimInvitee>,
}

/// One invitee of an event.
#[derive(Debug, Clone)]
pub struct SimInvitee {
    pub uuid: String,
    /// As typed by the person: case and surrounding spaces vary.
    pub email: String,
    pub name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub canceled: bool,
    pub created: DateTime<Utc>,
    pub rescheduled: bool,
    /// Event and invitee UUIDs of the other half of a reschedule.
    pub old_invitee: Option<(String, String)>,
    pub new_invitee: Option<(String, String)>,
    pub timezone: Option<&'static str>,
}

/// The whole organization.
#[derive(Debug, Clone)]
pub struct OrgData {
    pub org_uuid: String,
    /// `users[0]` is the owner, whose token the simulator accepts.
    pub users: Vec<SimUser>,
    /// Sorted by start time, then UUID.
    pub events: Vec<SimEvent>,
}

struct Person {
    first: &'static str,
    last: &'static str,
    email: String,
    split_name: bool,
}

impl OrgData {
    /// `events` scheduled events made from `seed`; the same inputs always give
    /// the same organization.
    pub fn generate(seed: u64, events: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut uuid = || uuid_from(&mut rng);
        let org_uuid = uuid();
        let users: Vec<SimUser> = USERS
            .iter()
            .copied()
            .map(|(name, admin)| {
                let slug = name.to_lowercase().replace(' ', "-");
                SimUser {
                    uuid: uuid(),
                    name: name.into(),
                    email: format!("{}@tutoring.example.com", slug.replace('-', ".")),
                    slug,
                    admin,
                }
            })
            .collect();
        let event_types: Vec<String> = (0..EVENT_NAMES.len()).map(|_| uuid()).collect();

        let mut maker = Generator {
            rng: StdRng::seed_from_u64(seed ^ 0x5eed_cafe),
            people: Vec::new(),
        };
        // Fewer people than bookings, so many book again and again.
        let people = (events * 2 / 3).max(3);
        for i in 0..people {
            let person = maker.person(i);
            maker.people.push(person);
        }

        let epoch = Utc
            .with_ymd_and_hms(2025, 1, 6, 8, 0, 0)
            .single()
            .unwrap_or_default();
        let mut list: Vec<SimEvent> = Vec::with_capacity(events);
        let mut start = epoch;
        let big_group = (events >= 3).then_some(events / 2);
        let mut i = 0;
        while list.len() < events {
            // Sometimes two hosts teach at the same time: equal start times
            // are what a start-time watermark must cope with.
            if maker.rng.random_bool(0.9) {
                start += Duration::minutes(maker.rng.random_range(1..=16) * 30);
            }
            let kind = maker.rng.random_range(0..100);
            let group_size = if big_group == Some(i) {
                BIG_GROUP_SIZE
            } else if kind < 6 {
                maker.rng.random_range(2..=8)
            } else {
                1
            };
            let mut event = maker.event(
                &mut uuid_source(&mut gen_seed(seed, i)),
                start,
                &event_types,
                group_size,
            );
            event.canceled = (6..16).contains(&kind);
            if event.canceled {
                for invitee in &mut event.invitees {
                    invitee.canceled = true;
                }
            }
            // A reschedule: the old booking is canceled and points at the new
            // one on a later event, booked by the same person.
            if (16..21).contains(&kind) && list.len() + 2 <= events {
                let later = start + Duration::days(maker.rng.random_range(1..=14));
                let mut new = maker.event(
                    &mut uuid_source(&mut gen_seed(seed, i + 1_000_000)),
                    later,
                    &event_types,
                    1,
                );
                let (old_inv, new_inv) = (&mut event.invitees[0], &mut new.invitees[0]);
                new_inv.email = old_inv.email.trim().to_owned();
                new_inv.name = old_inv.name.clone();
                new_inv.first_name = old_inv.first_name.clone();
                new_inv.last_name = old_inv.last_name.clone();
                old_inv.canceled = true;
                old_inv.rescheduled = true;
                old_inv.new_invitee = Some((new.uuid.clone(), new_inv.uuid.clone()));
                new_inv.old_invitee = Some((event.uuid.clone(), old_inv.uuid.clone()));
                event.canceled = true;
                list.push(new);
            }
            list.push(event);
            i += 1;
        }
        list.truncate(events);
        list.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.uuid.cmp(&b.uuid)));
        Self {
            org_uuid,
            users,
            events: list,
        }
    }

    /// What a correct scan finds: the distinct normalized emails of every
    /// invitee of every event, whatever its status. Hosts and guests are not
    /// in it.
    pub fn expected_emails(&self) -> BTreeSet<String> {
        self.events
            .iter()
            .flat_map(|e| &e.invitees)
            .filter_map(|i| normalize_email(&i.email))
            .collect()
    }

    /// A booking made now by `name <email>` for a one-to-one event starting
    /// at `start`, as Calendly's booking page would add it; returns the new
    /// event's UUID. Its ids follow from the organization's size, so the
    /// same bookings on the same organization give the same ids.
    pub fn book(&mut self, name: &str, email: &str, start: DateTime<Utc>) -> String {
        let mut rng = gen_seed(self.events.len() as u64, usize::MAX - self.events.len());
        let mut uuid = uuid_source(&mut rng);
        let template = self.events.first().cloned();
        let created = Utc::now();
        let (first, last) = name.split_once(' ').unwrap_or((name, ""));
        let event = SimEvent {
            uuid: uuid(),
            name: EVENT_NAMES[0].to_owned(),
            canceled: false,
            start,
            end: start + Duration::minutes(60),
            created,
            host: 0,
            event_type: template.map(|e| e.event_type).unwrap_or_else(&mut uuid),
            location: None,
            guests: Vec::new(),
            invitee_limit: 1,
            invitees: vec![SimInvitee {
                uuid: uuid(),
                email: email.to_owned(),
                name: name.to_owned(),
                first_name: Some(first.to_owned()),
                last_name: Some(last.to_owned()).filter(|l| !l.is_empty()),
                canceled: false,
                created,
                rescheduled: false,
                old_invitee: None,
                new_invitee: None,
                timezone: Some("Europe/Berlin"),
            }],
        };
        let id = event.uuid.clone();
        let at = self
            .events
            .partition_point(|e| (e.start, &e.uuid) <= (start, &event.uuid));
        self.events.insert(at, event);
        id
    }

    /// The number of invitee records (bookings), every status.
    pub fn invitee_count(&self) -> usize {
        self.events.iter().map(|e| e.invitees.len()).sum()
    }
}

/// Each event gets its own UUID stream, so inserting a reschedule does not
/// shift every later id.
fn gen_seed(seed: u64, i: usize) -> StdRng {
    StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64)
}

fn uuid_source(rng: &mut StdRng) -> impl FnMut() -> String + '_ {
    move || uuid_from(rng)
}

fn uuid_from(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

struct Generator {
    rng: StdRng,
    people: Vec<Person>,
}

impl Generator {
    fn person(&mut self, i: usize) -> Person {
        let first = *FIRST_NAMES.choose(&mut self.rng).unwrap_or(&"Kim");
        let last = *LAST_NAMES.choose(&mut self.rng).unwrap_or(&"Lee");
        let domain = *DOMAINS.choose(&mut self.rng).unwrap_or(&"example.org");
        let local = format!("{}.{}{}", ascii(first), ascii(last), i);
        Person {
            first,
            last,
            email: format!("{local}@{domain}").to_lowercase(),
            split_name: self.rng.random_bool(0.3),
        }
    }

    /// How the person typed their email this time.
    fn typed_email(&mut self, canonical: &str) -> String {
        let mut email = canonical.to_owned();
        if self.rng.random_bool(0.2) {
            email = email
                .split('.')
                .map(|part| {
                    let mut chars = part.chars();
                    chars
                        .next()
                        .map(|c| c.to_uppercase().chain(chars).collect())
                        .unwrap_or_default()
                })
                .collect::<Vec<String>>()
                .join(".");
        }
        if self.rng.random_bool(0.1) {
            email = format!("  {email} ");
        }
        email
    }

    fn event(
        &mut self,
        uuid: &mut impl FnMut() -> String,
        start: DateTime<Utc>,
        event_types: &[String],
        group_size: usize,
    ) -> SimEvent {
        let type_index = self.rng.random_range(0..event_types.len());
        let created = start - Duration::days(self.rng.random_range(1..=30));
        let location = match self.rng.random_range(0..10) {
            0 => None,
            1..=4 => Some(json!({"type": "zoom", "status": "pushed",
                "join_url": format!("https://zoom.example.com/j/{}", self.rng.random_range(100_000_000u64..999_999_999))})),
            5..=7 => Some(json!({"type": "physical", "location": "Lernstudio, Hauptstraße 1"})),
            _ => Some(json!({"type": "ask_invitee", "location": "+49 30 1234567"})),
        };
        let guests = if self.rng.random_bool(0.05) {
            vec![format!(
                "guest{}@partner.example.net",
                self.rng.random_range(0..1000)
            )]
        } else {
            Vec::new()
        };
        let mut invitees = Vec::with_capacity(group_size);
        for n in 0..group_size {
            let index = self.pick_person();
            let (email, first, last, split) = {
                let p = &self.people[index];
                (p.email.clone(), p.first, p.last, p.split_name)
            };
            invitees.push(SimInvitee {
                uuid: uuid(),
                email: self.typed_email(&email),
                name: format!("{first} {last}"),
                first_name: split.then(|| first.to_owned()),
                last_name: split.then(|| last.to_owned()),
                canceled: false,
                created: created + Duration::seconds(n as i64 * 37),
                rescheduled: false,
                old_invitee: None,
                new_invitee: None,
                timezone: ["Europe/Berlin", "Europe/Vienna"]
                    .choose(&mut self.rng)
                    .copied()
                    .filter(|_| self.rng.random_bool(0.9)),
            });
        }
        SimEvent {
            uuid: uuid(),
            name: EVENT_NAMES[type_index].to_owned(),
            canceled: false,
            start,
            end: start + Duration::minutes(60),
            created,
            host: self.rng.random_range(0..USERS.len()),
            event_type: event_types[type_index].clone(),
            location,
            guests,
            invitee_limit: group_size.max(1),
            invitees,
        }
    }

    /// Regulars book far more often than most.
    fn pick_person(&mut self) -> usize {
        let n = self.people.len();
        if self.rng.random_bool(0.3) {
            self.rng.random_range(0..n.min(10))
        } else {
            self.rng.random_range(0..n)
        }
    }
}

/// Email-safe form of a name.
fn ascii(name: &str) -> String {
    name.chars()
        .filter_map(|c| match c {
            'ä' => Some('a'),
            'ö' | 'Ö' => Some('o'),
            'ü' => Some('u'),
            'ë' => Some('e'),
            'ı' => Some('i'),
            c if c.is_ascii_alphabetic() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_organization() {
        let a = OrgData::generate(7, 200);
        let b = OrgData::generate(7, 200);
        let ids = |o: &OrgData| o.events.iter().map(|e| e.uuid.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(a.expected_emails(), b.expected_emails());
        assert_ne!(ids(&a), ids(&OrgData::generate(8, 200)));
    }

    #[test]
    fn the_data_has_every_case_a_client_must_handle() {
        let org = OrgData::generate(42, 300);
        assert_eq!(org.events.len(), 300);
        let invitees = || org.events.iter().flat_map(|e| &e.invitees);
        assert!(
            org.events.iter().any(|e| e.invitees.len() > 100),
            "a group event over one page"
        );
        assert!(
            org.events
                .iter()
                .any(|e| (2..=8).contains(&e.invitees.len())),
            "small group events"
        );
        assert!(
            org.events
                .iter()
                .any(|e| e.canceled && !e.invitees.is_empty()),
            "canceled events keep invitees"
        );
        assert!(
            org.events.iter().any(|e| e.location.is_none()),
            "location: null"
        );
        assert!(org.events.iter().any(|e| !e.guests.is_empty()), "guests");
        assert!(
            invitees().any(|i| i.rescheduled && i.new_invitee.is_some()),
            "rescheduled old half"
        );
        assert!(
            invitees().any(|i| i.old_invitee.is_some()),
            "rescheduled new half"
        );
        assert!(
            invitees().any(|i| i.first_name.is_none()),
            "null first names"
        );
        assert!(invitees().any(|i| i.first_name.is_some()), "split names");
        assert!(
            invitees().any(|i| i.email != i.email.trim()),
            "padded emails"
        );
        assert!(
            invitees().any(|i| i.email != i.email.to_lowercase()),
            "mixed-case emails"
        );
        assert!(
            org.events.windows(2).any(|w| w[0].start == w[1].start),
            "events sharing a start time"
        );
        // The same person books many times.
        assert!(org.expected_emails().len() < org.invitee_count() / 2);
        // Hosts and guests are not customers.
        let expected = org.expected_emails();
        assert!(org.users.iter().all(|u| !expected.contains(&u.email)));
        assert!(
            org.events
                .iter()
                .flat_map(|e| &e.guests)
                .all(|g| !expected.contains(g))
        );
    }
}
