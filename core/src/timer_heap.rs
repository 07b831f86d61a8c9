//! The timer index: the armed timers ordered by deadline, in a pairing heap whose links live in
//! the timer slots themselves (three `u32` slot indices per timer, [`Links`]). It needs no
//! memory of its own, so neither the `Storage` trait nor `Config` knows of it.
//!
//! Why a pairing heap: arming is an insert, O(1); firing is a delete-min and cancelling or
//! re-arming a delete anywhere, O(log n) amortized; the earliest deadline is the root, O(1); and
//! two heaps meld in O(1), which is how the timers armed during a pass (kept apart so that none
//! fires twice in one pass) rejoin the others when it ends. The alternatives cost more here: an
//! implicit binary heap needs an array of positions of its own (storage the loop does not
//! have); a skew or leftist heap pays O(log n) for every insert; a balanced search tree gives
//! the same bounds in the worst case for several times the code; a timing wheel needs bucket
//! heads of its own, orders timers only to its granularity, and makes the next deadline a scan.
//!
//! Order is by deadline, ties by slot index: the order the loop has always fired timers in.

use crate::entry::{Links, Timer, NEVER, NIL};
use crate::slot::{Arena, SlotStore};

/// What a heap links: nodes named by slot index, each with a deadline and [`Links`].
pub(crate) trait Nodes {
    /// Node `i`'s deadline ([`NEVER`] for a node that does not exist).
    fn deadline(&self, i: u32) -> u64;
    /// Node `i`'s links ([`Links::DETACHED`] for a node that does not exist).
    fn links(&self, i: u32) -> Links;
    /// Node `i`'s links, to change them (`None` for a node that does not exist).
    fn links_mut(&mut self, i: u32) -> Option<&mut Links>;
}

impl<E, K, S: SlotStore<Timer<E, K>>> Nodes for Arena<Timer<E, K>, S> {
    fn deadline(&self, i: u32) -> u64 {
        self.at(i).and_then(|(_, t)| t.deadline).unwrap_or(NEVER)
    }
    fn links(&self, i: u32) -> Links {
        self.at(i).map_or(Links::DETACHED, |(_, t)| t.links)
    }
    fn links_mut(&mut self, i: u32) -> Option<&mut Links> {
        let (generation, _) = self.at(i)?;
        self.get_mut(i, generation).map(|t| &mut t.links)
    }
}

fn set<N: Nodes>(n: &mut N, i: u32, f: impl FnOnce(&mut Links)) {
    if let Some(l) = n.links_mut(i) {
        f(l);
    }
}

/// Whether `a` comes before `b`: earlier deadline, or the same and a lower index.
fn before<N: Nodes>(n: &N, a: u32, b: u32) -> bool {
    (n.deadline(a), a) < (n.deadline(b), b)
}

/// Links two roots (either may be [`NIL`]) into one tree; returns its root, whose `next` and
/// `prev` are [`NIL`]. The later root becomes the leftmost child of the earlier one.
fn link<N: Nodes>(n: &mut N, a: u32, b: u32) -> u32 {
    if a == NIL {
        return b;
    }
    if b == NIL {
        return a;
    }
    let (parent, child) = if before(n, a, b) { (a, b) } else { (b, a) };
    let first = n.links(parent).child;
    set(n, child, |l| {
        l.next = first;
        l.prev = parent;
    });
    if first != NIL {
        set(n, first, |l| l.prev = child);
    }
    set(n, parent, |l| {
        l.child = child;
        l.next = NIL;
        l.prev = NIL;
    });
    parent
}

/// Melds the sibling list starting at `first` into one tree, two-pass: link neighbours in
/// pairs left to right, then fold the pairs into one right to left. Returns its root. The pairs
/// wait in a stack threaded through their `next` links: no memory beyond the nodes.
fn merge_pairs<N: Nodes>(n: &mut N, first: u32) -> u32 {
    let mut stack = NIL;
    let mut cur = first;
    while cur != NIL {
        let second = n.links(cur).next;
        let pair = if second == NIL {
            let alone = cur;
            cur = NIL;
            alone
        } else {
            let (a, after) = (cur, n.links(second).next);
            cur = after;
            link(n, a, second)
        };
        set(n, pair, |l| {
            l.next = stack;
            l.prev = NIL;
        });
        stack = pair;
    }
    let mut root = NIL;
    while stack != NIL {
        let tree = stack;
        stack = n.links(tree).next;
        set(n, tree, |l| l.next = NIL);
        root = link(n, root, tree);
    }
    root
}

/// An empty heap or the root of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Heap {
    root: u32,
}

impl Heap {
    /// No nodes.
    pub(crate) const EMPTY: Heap = Heap { root: NIL };

    /// The node that comes first, if any.
    pub(crate) fn peek(&self) -> Option<u32> {
        (self.root != NIL).then_some(self.root)
    }

    /// Adds node `i`, which must be in no heap ([`Links::DETACHED`]). O(1).
    pub(crate) fn push<N: Nodes>(&mut self, n: &mut N, i: u32) {
        self.root = link(n, self.root, i);
    }

    /// Takes out the node that comes first. O(log n) amortized.
    pub(crate) fn pop<N: Nodes>(&mut self, n: &mut N) -> Option<u32> {
        let root = self.peek()?;
        let children = n.links(root).child;
        set(n, root, |l| *l = Links::DETACHED);
        self.root = merge_pairs(n, children);
        Some(root)
    }

    /// Takes out node `i`, which must be in this heap. O(log n) amortized.
    pub(crate) fn remove<N: Nodes>(&mut self, n: &mut N, i: u32) {
        if i == self.root {
            self.pop(n);
            return;
        }
        let l = n.links(i);
        if l.prev == NIL {
            // Not in this heap (a root of another one): nothing to take out here.
            return;
        }
        // Cut the subtree of `i` out of its sibling list...
        if n.links(l.prev).child == i {
            set(n, l.prev, |p| p.child = l.next);
        } else {
            set(n, l.prev, |p| p.next = l.next);
        }
        if l.next != NIL {
            set(n, l.next, |s| s.prev = l.prev);
        }
        // ...and give its children back to the heap as one tree.
        set(n, i, |x| *x = Links::DETACHED);
        let rest = merge_pairs(n, l.child);
        self.root = link(n, self.root, rest);
    }

    /// Moves every node of `other` into this heap, leaving `other` empty. O(1).
    pub(crate) fn absorb<N: Nodes>(&mut self, n: &mut N, other: &mut Heap) {
        self.root = link(n, self.root, other.root);
        other.root = NIL;
    }
}

/// The loop's timer index: every armed timer is in exactly one of its two heaps.
#[derive(Debug)]
pub(crate) struct TimerIndex {
    /// Armed timers, earliest first; a pass fires from here.
    pub(crate) armed: Heap,
    /// Timers armed while a pass runs (re-armed by it, or by a callback it ran): they wait for
    /// the next pass, and join `armed` when this one ends.
    pub(crate) aside: Heap,
    /// The number of the running or last timer pass.
    pub(crate) pass: u64,
    /// Whether a pass is running.
    pub(crate) firing: bool,
}

impl TimerIndex {
    /// No timer armed, no pass yet.
    pub(crate) const fn new() -> Self {
        TimerIndex {
            armed: Heap::EMPTY,
            aside: Heap::EMPTY,
            pass: 0,
            firing: false,
        }
    }

    /// The heap that holds an armed timer last armed in pass `armed_in`.
    pub(crate) fn heap_of(&mut self, armed_in: u64) -> &mut Heap {
        if self.firing && armed_in == self.pass {
            &mut self.aside
        } else {
            &mut self.armed
        }
    }

    /// The earliest deadline of all armed timers. O(1).
    #[inline]
    pub(crate) fn next_deadline<N: Nodes>(&self, n: &N) -> Option<u64> {
        // Spelled out rather than as an iterator chain: every iteration asks twice, and with
        // no timer armed (the common case for a server) this is two compares.
        match (self.armed.peek(), self.aside.peek()) {
            (None, None) => None,
            (Some(i), None) | (None, Some(i)) => Some(n.deadline(i)),
            (Some(a), Some(b)) => Some(n.deadline(a).min(n.deadline(b))),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use std::vec;
    use std::vec::Vec;

    /// Nodes in plain vectors, indexed by node number.
    struct Plain {
        deadline: Vec<u64>,
        links: Vec<Links>,
    }

    impl Plain {
        fn new(nodes: usize) -> Self {
            Plain {
                deadline: vec![0; nodes],
                links: vec![Links::DETACHED; nodes],
            }
        }
    }

    impl Nodes for Plain {
        fn deadline(&self, i: u32) -> u64 {
            self.deadline.get(i as usize).copied().unwrap_or(NEVER)
        }
        fn links(&self, i: u32) -> Links {
            self.links
                .get(i as usize)
                .copied()
                .unwrap_or(Links::DETACHED)
        }
        fn links_mut(&mut self, i: u32) -> Option<&mut Links> {
            self.links.get_mut(i as usize)
        }
    }

    /// Walks heap `h` checking its links (the root has no siblings, every `prev` points back
    /// to the parent or left sibling, each node comes after its parent, no node twice); returns
    /// its nodes as (deadline, index).
    fn walk(n: &Plain, h: &Heap) -> BTreeSet<(u64, u32)> {
        let mut seen = BTreeSet::new();
        let Some(root) = h.peek() else {
            return seen;
        };
        let r = n.links(root);
        assert_eq!((r.prev, r.next), (NIL, NIL), "root {root} has siblings");
        let mut stack = vec![root];
        while let Some(x) = stack.pop() {
            assert!(
                seen.insert((n.deadline(x), x)),
                "node {x} reached twice: a cycle or a shared child"
            );
            assert!(seen.len() <= n.links.len(), "more nodes than exist");
            let mut prev = x;
            let mut c = n.links(x).child;
            while c != NIL {
                assert_eq!(n.links(c).prev, prev, "node {c}'s prev link");
                assert!(before(n, x, c), "node {c} comes before its parent {x}");
                stack.push(c);
                prev = c;
                c = n.links(c).next;
            }
        }
        seen
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Arm (or re-arm) node `node` with `deadline` in heap 0 or 1.
        Arm {
            node: u32,
            deadline: u64,
            aside: bool,
        },
        /// Take the node out of whichever heap holds it.
        Cancel { node: u32 },
        /// Pop the first node of heap 0 or 1.
        Pop { aside: bool },
        /// Move heap 1 into heap 0.
        Absorb,
    }

    const NODES: u32 = 24;

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..NODES, 0..10u64, any::<bool>())
                .prop_map(|(node, deadline, aside)| Op::Arm { node, deadline, aside }),
            2 => (0..NODES).prop_map(|node| Op::Cancel { node }),
            3 => any::<bool>().prop_map(|aside| Op::Pop { aside }),
            1 => Just(Op::Absorb),
        ]
    }

    proptest! {
        /// Random arms, re-arms, cancels, pops and melds on two heaps, against a model of two
        /// sorted sets: every pop returns the model's first node, and after every step each
        /// heap's links are consistent and hold exactly the model's nodes.
        #[test]
        fn heaps_match_sorted_sets(ops in proptest::collection::vec(op(), 1..300)) {
            let mut n = Plain::new(NODES as usize);
            let mut heaps = [Heap::EMPTY, Heap::EMPTY];
            let mut model: [BTreeSet<(u64, u32)>; 2] = [BTreeSet::new(), BTreeSet::new()];
            // Which heap holds each node.
            let mut home: Vec<Option<usize>> = vec![None; NODES as usize];
            for op in ops {
                match op {
                    Op::Arm { node, deadline, aside } => {
                        if let Some(h) = home[node as usize].take() {
                            heaps[h].remove(&mut n, node);
                            model[h].remove(&(n.deadline[node as usize], node));
                        }
                        prop_assert_eq!(n.links(node), Links::DETACHED);
                        let h = usize::from(aside);
                        n.deadline[node as usize] = deadline;
                        heaps[h].push(&mut n, node);
                        model[h].insert((deadline, node));
                        home[node as usize] = Some(h);
                    }
                    Op::Cancel { node } => {
                        if let Some(h) = home[node as usize].take() {
                            heaps[h].remove(&mut n, node);
                            model[h].remove(&(n.deadline[node as usize], node));
                        }
                    }
                    Op::Pop { aside } => {
                        let h = usize::from(aside);
                        let got = heaps[h].pop(&mut n);
                        let want = model[h].pop_first().map(|(_, i)| i);
                        prop_assert_eq!(got, want);
                        if let Some(i) = got {
                            home[i as usize] = None;
                        }
                    }
                    Op::Absorb => {
                        let [a, b] = &mut heaps;
                        a.absorb(&mut n, b);
                        prop_assert_eq!(b.peek(), None);
                        let moved = core::mem::take(&mut model[1]);
                        model[0].extend(moved);
                        for h in home.iter_mut().flatten() {
                            *h = 0;
                        }
                    }
                }
                for h in 0..2 {
                    prop_assert_eq!(&walk(&n, &heaps[h]), &model[h]);
                }
                for (i, h) in home.iter().enumerate() {
                    if h.is_none() {
                        prop_assert_eq!(n.links[i], Links::DETACHED, "node {} is in no heap", i);
                    }
                }
            }
        }
    }

    /// Many nodes, ties included: pushes in a scrambled order, cancels every third, and pops
    /// the rest in (deadline, index) order.
    #[test]
    fn pops_many_in_order_after_cancels() {
        const COUNT: u32 = 20_000;
        let mut n = Plain::new(COUNT as usize);
        let mut h = Heap::EMPTY;
        for k in 0..COUNT {
            let i = k.wrapping_mul(7919) % COUNT;
            n.deadline[i as usize] = u64::from(i.wrapping_mul(2_654_435_761) % 5_000);
            h.push(&mut n, i);
        }
        let mut model: BTreeSet<(u64, u32)> =
            (0..COUNT).map(|i| (n.deadline[i as usize], i)).collect();
        // A pop first, so that later cancels hit nodes deep in the tree and not only the
        // root's children.
        let first = h.pop(&mut n).expect("a node");
        assert_eq!(Some(first), model.pop_first().map(|(_, i)| i));
        for i in (0..COUNT).step_by(3).filter(|&i| i != first) {
            h.remove(&mut n, i);
            model.remove(&(n.deadline[i as usize], i));
        }
        assert_eq!(walk(&n, &h), model);
        let mut popped = Vec::new();
        while let Some(i) = h.pop(&mut n) {
            popped.push(i);
        }
        let want: Vec<u32> = model.iter().map(|&(_, i)| i).collect();
        assert_eq!(popped, want);
        assert!(n.links.iter().all(|l| *l == Links::DETACHED));
    }

    #[test]
    fn index_deadline_is_the_earlier_root_of_both_heaps() {
        let mut n = Plain::new(3);
        let mut index = TimerIndex::new();
        assert_eq!(index.next_deadline(&n), None);
        n.deadline = vec![30, 20, 10];
        index.armed.push(&mut n, 0);
        index.armed.push(&mut n, 1);
        assert_eq!(index.next_deadline(&n), Some(20));
        index.aside.push(&mut n, 2);
        assert_eq!(index.next_deadline(&n), Some(10));
        let (armed, aside, pass) = (index.armed, index.aside, index.pass);
        assert_ne!(armed, aside);
        index.firing = true;
        assert_eq!(
            *index.heap_of(pass),
            aside,
            "armed in the running pass: aside"
        );
        assert_eq!(
            *index.heap_of(pass.wrapping_sub(1)),
            armed,
            "armed before it"
        );
        index.firing = false;
        assert_eq!(
            *index.heap_of(pass),
            armed,
            "no pass running: no timer is aside"
        );
    }
}
