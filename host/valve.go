package host

// Valve is one stage of the request pipeline, as in Tomcat: it may work on
// the exchange before and after calling next.Invoke(x), or answer itself
// and not call next. The last stage is the context's basic valve, which
// runs the app and commits the session delta; after next.Invoke returns,
// x.Delta and x.Err tell what the request did. The replication work adds a
// ReplicationValve (ships x.Delta) and a JvmRouteBinderValve (rewrites
// x.RequestedSessionID of a failed-over session) here.
//
// Invoke is called concurrently for different requests.
type Valve interface {
	Invoke(x *Exchange, next Invoker)
}

// Invoker passes an exchange on to the rest of the pipeline.
type Invoker interface {
	Invoke(x *Exchange)
}

// ValveFunc adapts a function to a [Valve].
type ValveFunc func(x *Exchange, next Invoker)

// Invoke calls f(x, next).
func (f ValveFunc) Invoke(x *Exchange, next Invoker) { f(x, next) }

// stage links a valve to the rest of the pipeline.
type stage struct {
	v    Valve
	next Invoker
}

func (s *stage) Invoke(x *Exchange) { s.v.Invoke(x, s.next) }

// basicValve ends the pipeline: it runs the exchange's context.
type basicValve struct{}

func (basicValve) Invoke(x *Exchange) { x.Context.invoke(x) }

// pipeline builds the chain valves... → basic.
func pipeline(valves []Valve) Invoker {
	var next Invoker = basicValve{}
	for i := len(valves) - 1; i >= 0; i-- {
		next = &stage{v: valves[i], next: next}
	}
	return next
}
