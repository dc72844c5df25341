// Package farm is farmed deployment, after Tomcat's FarmWarDeployer: a
// WebAssembly module deployed on one member (through [Deployer.Deploy], the
// admin API of [NewAdminHandler], or a file dropped in the watch dir) is
// deployed there first, then streamed to every other member of the
// cluster, which verifies it and deploys it too. A member that starts
// later catches up with [Deployer.Sync] before it serves, from a member
// that has synced itself; when the whole cluster starts at once, each
// member serves the modules its deploy dir holds, and none is removed
// because another member lacks it.
//
//	d, err := farm.New(farm.Config{TempDir: tmp, DeployDir: dep}, ch, farm.ServerHost(srv))
//	d.Start(ctx)
//	d.Sync(ctx) // then open the HTTP port
//	rep, err := d.DeployFile(ctx, "shop.wasm", farm.DeployOptions{}) // "/shop" everywhere
//
// # Context paths
//
// As Tomcat names contexts after WAR files: ROOT.wasm is "/", shop.wasm
// "/shop", shop#v2.wasm "/shop/v2". A manifest beside a module in the
// watch dir ("shop.wasm.json", {"path": "/store"}) overrides the name.
// The deploy dir holds one module per farmed app, named by [FileName].
//
// # Transfer
//
// Farm messages share the cluster's [tribes.Channel] with session
// replication: each starts with [Magic] ("WFD1"), and the farm's listener
// ignores every other message. A module travels as Begin (size, SHA-256,
// path), chunks of Config.ChunkSize, and Commit, each sent with
// use_ack|synchronized_ack, so a member that refuses a message (unknown
// transfer, over a limit, unauthenticated) answers FAIL_ACK and the origin
// learns at once. A receiver writes chunks straight to TempDir, hashing
// as it goes: its memory is one chunk, whatever the module's size (the
// host still reads the verified module to compile it). At Commit it checks
// size and digest; a corrupt module is dropped and its error reported.
// A verified module is compiled by the host and only then renamed into
// DeployDir, so the deploy dir only ever holds modules that serve (the
// reason for doing it in this order, where Tomcat renames first). Every
// member sends its outcome back in a result message, and the origin
// returns a [Report] with one line per member. Received deploys and
// undeploys are applied one at a time, in arrival order. A member that
// stops half-way leaves partial files in TempDir; its next Start, or its
// janitor later, removes them once they went unmodified for 10 minutes
// (see Config.TempDir).
//
// A redeploy swaps versions in the host: requests in flight finish on the
// old version, new ones go to the new one, sessions stay. A member that
// refuses a module (it does not compile, wrong ABI) keeps serving the
// version it had.
//
// # Catching up
//
// At Sync a member asks the others for their apps and follows the first
// that has synced: it deploys the apps that member lists, fetching those
// its deploy dir does not hold with the same digest. It removes a module of
// its deploy dir that member does not list only if that member can vouch
// that its list is all the cluster farms. A member cannot when it is cold:
// its Sync followed no one (the whole cluster was restarting, or it was up
// first), followed a cold member (so, in a cluster of members of this
// version, every member is cold), or failed to deploy or fetch an app. A
// cold member's list may lack apps it never had (a new machine with an
// empty deploy dir) or failed to get, so a member following it keeps and
// serves its own modules, and is cold too: a restart of the cluster deletes
// nothing, whoever is up first. A cold member's list names the paths it saw
// undeployed since it started (or learned so at its Sync), and those
// modules are removed. The cost: an undeploy made while a member was down
// is not repeated on it when it rejoins a cluster whose members that saw
// the undeploy have all restarted since; it keeps serving the app, as a
// Tomcat member would, until the app is undeployed again.
//
// # Security
//
// Only members of the channel can deploy through it. With Config.AuthKey
// every farm message carries an HMAC-SHA256 under that key, and messages
// without a valid one are dropped, counted (Stats.Unauthenticated) and
// answered with FAIL_ACK. The HMAC does not stop a replay of a captured
// message by someone on the cluster network; combine it with the
// channel's encryption for that. The admin API needs a bearer token
// ([LoadOrCreateToken]) and should listen on loopback.
//
// # Concurrency
//
// Deploy, Undeploy, Sync and watch-dir changes of one member run one at a
// time, and their changes to the host and the deploy dir are applied one
// at a time with the deploys and undeploys the member receives. A member
// that joins while a deploy or undeploy is under way gets it too, once the
// members it was first sent to have reported, and Sync does not replace
// what a deploy or undeploy changed since Start. Two members deploying the
// same path at the same moment race, and members may end up with
// different versions (as with Tomcat); the cluster view of
// [Deployer.ClusterApps] shows it.
package farm
