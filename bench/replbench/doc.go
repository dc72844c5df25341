// Package replbench measures session replication: the requests per second
// of the counter app on a member of a 2- or 3-member cluster (DeltaManager
// asynchronous and synchronous, BackupManager) against the same app
// without replication, in alternating rounds of one run; and the state
// transfer of many sessions to a joining member, with the memory each
// replicated session takes there.
//
// The members run in this process on real loopback channels (multicast on
// the loopback interface with TTL 0, a group port and domain of their own);
// the load comes from a separate process or wrk.
package replbench
