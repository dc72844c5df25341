// Package bench holds wasmfarm's throughput benchmarks and the report they
// print. Each benchmark runs its members as separate OS processes on
// loopback, as real members would, and measures the physical limit of the
// same machine in the same run (raw TCP), so every figure comes with a
// ratio that stays meaningful when the machine is busy.
//
// The transport benchmark ([RunTransport]) is the analogue of Apache
// Tribes' load test: one sender process and one or two receiver processes
// exchange messages of several sizes in three modes (asynchronous, ACK,
// synchronized ACK), with and without gzip. The command
//
//	wasmfarm bench transport [-size 1KiB,1MiB] [-mode async,ack,sync] [-gzip off,on] [-receivers 1,2] [-json]
//
// runs it; [ReceiverMain] is the receiver process's side.
package bench
