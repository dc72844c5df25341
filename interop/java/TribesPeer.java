// TribesPeer is wasmfarm's interop harness: a real Apache Tribes GroupChannel
// driven over a line protocol, so Go tests can exchange messages with it.
//
// It is our own program, compiled against the installed catalina-tribes.jar
// (Debian libtomcat10-java); no Tribes code is copied here. The Go package
// github.com/wasmfarm/wasmfarm/interop/javapeer compiles, starts and drives it.
//
// Usage:
//
//	java -Djava.net.preferIPv4Stack=true -cp DIR:catalina-tribes.jar:tomcat-juli.jar TribesPeer [flags]
//
// Flags (all optional):
//
//	-address A          receiver address to bind and advertise (127.0.0.1)
//	-port N             first receiver port tried (4000)
//	-autoBind N         ports tried from -port on (100)
//	-membership         run McastService (start level 15); otherwise the channel
//	                    starts with SND_RX_SEQ|SND_TX_SEQ only (level 3)
//	-mcastAddress A     multicast group (228.0.0.4)
//	-mcastPort N        multicast port (45564)
//	-mcastBind A        interface address of the group (127.0.0.1)
//	-frequency MS       heartbeat period (500)
//	-dropTime MS        member expiry (3000)
//	-domain D           local member domain (ISO-8859-1 string)
//	-memberPayload HEX  local member payload
//	-interceptor SPEC   add an interceptor, in order (top first); repeatable.
//	                    SPEC = NAME[:prop=value,prop=value...], NAME one of dispatch,
//	                    tcpfd, ping, gzip, encrypt, domain, static, order, fragment,
//	                    throughput, or a fully qualified class name. Properties are
//	                    set through the public setters, as server.xml does.
//	-static H:P:UIDHEX[:DOMAIN]  a member for the StaticMembershipInterceptor; repeatable
//	-localMember UIDHEX[:DOMAIN] the StaticMembershipInterceptor's LocalMember (host and
//	                    port come from the receiver), so the node's unique id is known
//	                    before it starts
//	-set T.prop=value   set a property of T: channel, receiver, sender (the pooled
//	                    transport), transmitter, mcast; repeatable
//	-startLevel N       channel start level (overrides the default above)
//	-throw              the channel listener throws after reporting each message
//	-hexLimit N         payloads up to N bytes are reported in hex (65536)
//	-logLevel L         java.util.logging level of Tribes' logs on stderr (INFO)
//	-maxLifetime S      exit after S seconds whatever happens (300)
//
// Every event is one JSON object on one line of stdout; Java's own logs go to
// stderr. Events: ready, memberAdded, memberDisappeared, message, dropped,
// sendResult, asyncResult, members, pong, throw, error, stopped, fatal.
//
// Commands, one per line on stdin; every event answering a command carries
// "cmd", the 1-based number of the command's line:
//
//	send H P UIDHEX OPTIONS PAYLOAD
//	    send PAYLOAD to the member H:P with that unique id (which need not be
//	    known through membership) with channel.send(options); answers
//	    sendResult, and asyncResult later when OPTIONS has the async bit.
//	    PAYLOAD: HEX or "-" (empty) or "@N" (N bytes, byte i = i mod 251) for
//	    a ByteMessage; "str:HEX" for a java.lang.String (UTF-8 of HEX);
//	    "arr:HEX" for a plain byte[] (Java-serialised).
//	burst COUNT THREADS H P UIDHEX OPTIONS PAYLOAD
//	    send COUNT ByteMessages from THREADS threads; message k is the 4-byte
//	    big-endian k followed by PAYLOAD's bytes. Answers one sendResult (ok,
//	    sent, failed, error), and one asyncResult once every async send ended.
//	members     answers members (the channel's current members)
//	throw on|off  make the listener throw (FAIL_ACK) or not; answers throw
//	ping        answers pong
//	stop        stops the channel, answers stopped and exits; so does EOF
//
// Exit status: 0 after stop or EOF, 2 on bad flags or a failed start (after a
// fatal event), 3 when -maxLifetime expired.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.io.Serializable;
import java.lang.reflect.Method;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.jar.JarFile;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.Logger;

import org.apache.catalina.tribes.ByteMessage;
import org.apache.catalina.tribes.Channel;
import org.apache.catalina.tribes.ChannelException;
import org.apache.catalina.tribes.ChannelInterceptor;
import org.apache.catalina.tribes.ChannelListener;
import org.apache.catalina.tribes.ChannelMessage;
import org.apache.catalina.tribes.ErrorHandler;
import org.apache.catalina.tribes.Member;
import org.apache.catalina.tribes.MembershipListener;
import org.apache.catalina.tribes.UniqueId;
import org.apache.catalina.tribes.group.ChannelInterceptorBase;
import org.apache.catalina.tribes.group.GroupChannel;
import org.apache.catalina.tribes.group.interceptors.StaticMembershipInterceptor;
import org.apache.catalina.tribes.membership.McastService;
import org.apache.catalina.tribes.membership.MemberImpl;
import org.apache.catalina.tribes.membership.StaticMember;
import org.apache.catalina.tribes.transport.ReplicationTransmitter;
import org.apache.catalina.tribes.transport.nio.NioReceiver;

public final class TribesPeer {

    // ------------------------------------------------------------------ events

    /** The event stream: the real stdout. System.out is pointed at stderr. */
    private static final PrintStream EVENTS = new PrintStream(new FileOutputStream(FileDescriptor.out), false,
            StandardCharsets.UTF_8);

    static void emit(Json j) {
        String line = j.toString();
        synchronized (EVENTS) {
            EVENTS.print(line);
            EVENTS.print('\n');
            EVENTS.flush();
        }
    }

    /** A minimal JSON object writer (flat values, nested objects and arrays of objects). */
    static final class Json {
        private final StringBuilder sb = new StringBuilder("{");

        private Json key(String k) {
            if (sb.length() > 1) {
                sb.append(',');
            }
            quote(sb, k);
            sb.append(':');
            return this;
        }

        Json put(String k, String v) {
            key(k);
            if (v == null) {
                sb.append("null");
            } else {
                quote(sb, v);
            }
            return this;
        }

        Json put(String k, long v) {
            key(k).sb.append(v);
            return this;
        }

        Json put(String k, boolean v) {
            key(k).sb.append(v);
            return this;
        }

        Json put(String k, Json v) {
            key(k).sb.append(v);
            return this;
        }

        Json put(String k, List<Json> v) {
            key(k).sb.append('[');
            for (int i = 0; i < v.size(); i++) {
                if (i > 0) {
                    sb.append(',');
                }
                sb.append(v.get(i));
            }
            sb.append(']');
            return this;
        }

        static Json event(String name) {
            return new Json().put("event", name);
        }

        @Override
        public String toString() {
            return sb.toString() + "}";
        }

        static void quote(StringBuilder sb, String s) {
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"':
                        sb.append("\\\"");
                        break;
                    case '\\':
                        sb.append("\\\\");
                        break;
                    case '\n':
                        sb.append("\\n");
                        break;
                    case '\r':
                        sb.append("\\r");
                        break;
                    case '\t':
                        sb.append("\\t");
                        break;
                    default:
                        if (c < 0x20 || c > 0x7e) {
                            sb.append(String.format("\\u%04x", (int) c));
                        } else {
                            sb.append(c);
                        }
                }
            }
            sb.append('"');
        }
    }

    static final char[] HEX = "0123456789abcdef".toCharArray();

    static String hex(byte[] b) {
        if (b == null) {
            return "";
        }
        return hex(b, 0, b.length);
    }

    static String hex(byte[] b, int off, int len) {
        char[] out = new char[2 * len];
        for (int i = 0; i < len; i++) {
            int v = b[off + i] & 0xff;
            out[2 * i] = HEX[v >>> 4];
            out[2 * i + 1] = HEX[v & 0xf];
        }
        return new String(out);
    }

    static byte[] unhex(String s) {
        if (s.length() % 2 != 0) {
            throw new IllegalArgumentException("odd number of hex digits");
        }
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) {
            int hi = Character.digit(s.charAt(2 * i), 16);
            int lo = Character.digit(s.charAt(2 * i + 1), 16);
            if (hi < 0 || lo < 0) {
                throw new IllegalArgumentException("not a hex digit in " + s);
            }
            b[i] = (byte) (hi << 4 | lo);
        }
        return b;
    }

    static String sha256(byte[] b, int off, int len) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(b, off, len);
            return hex(md.digest());
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static Json member(Member m) {
        Json j = new Json();
        if (m == null) {
            return j;
        }
        String host;
        try {
            host = InetAddress.getByAddress(m.getHost()).getHostAddress();
        } catch (Exception e) {
            host = "?" + hex(m.getHost());
        }
        j.put("host", host).put("port", m.getPort()).put("uniqueId", hex(m.getUniqueId()));
        j.put("domain", new String(nz(m.getDomain()), StandardCharsets.ISO_8859_1));
        j.put("command", new String(nz(m.getCommand()), StandardCharsets.ISO_8859_1));
        j.put("payload", hex(m.getPayload()));
        j.put("alive", m.getMemberAliveTime()).put("securePort", m.getSecurePort()).put("udpPort", m.getUdpPort());
        return j;
    }

    static byte[] nz(byte[] b) {
        return b == null ? new byte[0] : b;
    }

    static String describe(Throwable t) {
        StringBuilder sb = new StringBuilder(t.toString());
        if (t instanceof ChannelException) {
            for (ChannelException.FaultyMember fm : ((ChannelException) t).getFaultyMembers()) {
                sb.append(" [").append(fm.getMember() == null ? "?" : fm.getMember().getName()).append(": ");
                sb.append(fm.getCause());
                Throwable c = fm.getCause() == null ? null : fm.getCause().getCause();
                if (c != null) {
                    sb.append(" caused by ").append(c);
                }
                sb.append(']');
            }
        }
        for (Throwable c = t.getCause(); c != null && c != t; c = c.getCause()) {
            sb.append(" caused by ").append(c);
            if (c.getCause() == c) {
                break;
            }
        }
        return sb.toString();
    }

    // ---------------------------------------------------------------- options

    static final class Config {
        String address = "127.0.0.1";
        int port = 4000;
        int autoBind = 100;
        boolean membership;
        String mcastAddress = "228.0.0.4";
        int mcastPort = 45564;
        String mcastBind = "127.0.0.1";
        long frequency = 500;
        long dropTime = 3000;
        String domain;
        byte[] memberPayload;
        final List<String> interceptors = new ArrayList<>();
        final List<String> statics = new ArrayList<>();
        String localMember;
        final List<String> sets = new ArrayList<>();
        int startLevel = -1;
        boolean throwing;
        int hexLimit = 65536;
        String logLevel = "INFO";
        long maxLifetime = 300;

        static Config parse(String[] args) {
            Config c = new Config();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                switch (a) {
                    case "-membership":
                        c.membership = true;
                        continue;
                    case "-throw":
                        c.throwing = true;
                        continue;
                    default:
                        break;
                }
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException("flag " + a + " needs a value");
                }
                String v = args[++i];
                switch (a) {
                    case "-address":
                        c.address = v;
                        break;
                    case "-port":
                        c.port = Integer.parseInt(v);
                        break;
                    case "-autoBind":
                        c.autoBind = Integer.parseInt(v);
                        break;
                    case "-mcastAddress":
                        c.mcastAddress = v;
                        break;
                    case "-mcastPort":
                        c.mcastPort = Integer.parseInt(v);
                        break;
                    case "-mcastBind":
                        c.mcastBind = v;
                        break;
                    case "-frequency":
                        c.frequency = Long.parseLong(v);
                        break;
                    case "-dropTime":
                        c.dropTime = Long.parseLong(v);
                        break;
                    case "-domain":
                        c.domain = v;
                        break;
                    case "-memberPayload":
                        c.memberPayload = unhex(v);
                        break;
                    case "-interceptor":
                        c.interceptors.add(v);
                        break;
                    case "-static":
                        c.statics.add(v);
                        break;
                    case "-localMember":
                        c.localMember = v;
                        break;
                    case "-set":
                        c.sets.add(v);
                        break;
                    case "-startLevel":
                        c.startLevel = Integer.parseInt(v);
                        break;
                    case "-hexLimit":
                        c.hexLimit = Integer.parseInt(v);
                        break;
                    case "-logLevel":
                        c.logLevel = v;
                        break;
                    case "-maxLifetime":
                        c.maxLifetime = Long.parseLong(v);
                        break;
                    default:
                        throw new IllegalArgumentException("unknown flag " + a);
                }
            }
            return c;
        }
    }

    static final String PKG = "org.apache.catalina.tribes.group.interceptors.";

    static String interceptorClass(String name) {
        switch (name) {
            case "dispatch":
                return PKG + "MessageDispatchInterceptor";
            case "tcpfd":
                return PKG + "TcpFailureDetector";
            case "ping":
                return PKG + "TcpPingInterceptor";
            case "gzip":
                return PKG + "GzipInterceptor";
            case "encrypt":
                return PKG + "EncryptInterceptor";
            case "domain":
                return PKG + "DomainFilterInterceptor";
            case "static":
                return PKG + "StaticMembershipInterceptor";
            case "order":
                return PKG + "OrderInterceptor";
            case "fragment":
                return PKG + "FragmentationInterceptor";
            case "throughput":
                return PKG + "ThroughputInterceptor";
            default:
                if (name.indexOf('.') < 0) {
                    throw new IllegalArgumentException("unknown interceptor " + name);
                }
                return name;
        }
    }

    /** Sets a bean property through its public one-argument setter, preferring a String parameter. */
    static void setProperty(Object target, String prop, String value) throws Exception {
        if (prop.isEmpty()) {
            throw new IllegalArgumentException("empty property name for " + target.getClass().getName());
        }
        String name = "set" + Character.toUpperCase(prop.charAt(0)) + prop.substring(1);
        Class<?>[] order = { String.class, int.class, long.class, boolean.class, double.class, float.class,
                short.class, byte.class, byte[].class, InetAddress.class };
        for (Class<?> want : order) {
            for (Method m : target.getClass().getMethods()) {
                if (!m.getName().equals(name) || m.getParameterCount() != 1 || m.getParameterTypes()[0] != want) {
                    continue;
                }
                Object arg;
                if (want == String.class) {
                    arg = value;
                } else if (want == int.class) {
                    arg = Integer.decode(value);
                } else if (want == long.class) {
                    arg = Long.decode(value);
                } else if (want == boolean.class) {
                    arg = Boolean.parseBoolean(value);
                } else if (want == double.class) {
                    arg = Double.parseDouble(value);
                } else if (want == float.class) {
                    arg = Float.parseFloat(value);
                } else if (want == short.class) {
                    arg = Short.decode(value);
                } else if (want == byte.class) {
                    arg = Byte.decode(value);
                } else if (want == byte[].class) {
                    arg = unhex(value);
                } else {
                    arg = InetAddress.getByName(value);
                }
                m.invoke(target, arg);
                return;
            }
        }
        throw new IllegalArgumentException("no setter " + name + " on " + target.getClass().getName());
    }

    static void applyProps(Object target, String props) throws Exception {
        if (props == null || props.isEmpty()) {
            return;
        }
        for (String kv : props.split(",")) {
            int eq = kv.indexOf('=');
            if (eq < 0) {
                throw new IllegalArgumentException("property " + kv + " has no '='");
            }
            setProperty(target, kv.substring(0, eq).trim(), kv.substring(eq + 1).trim());
        }
    }

    // -------------------------------------------------------------- the taps

    /** What the bottom tap saw of the message being received on this thread. */
    static final class Received {
        int wireOptions;
        int wireLength;
        byte[] wireHead; // the wire bytes when not longer than hexLimit
        String wireSha;
        boolean delivered;
    }

    static final ThreadLocal<Received> RECEIVED = new ThreadLocal<>();
    static final ThreadLocal<ChannelMessage> CURRENT = new ThreadLocal<>();

    /** Sits just above the coordinator: records the message as it came off the wire. */
    static final class BottomTap extends ChannelInterceptorBase {
        final int hexLimit;

        BottomTap(int hexLimit) {
            this.hexLimit = hexLimit;
        }

        @Override
        public void messageReceived(ChannelMessage msg) {
            Received r = new Received();
            r.wireOptions = msg.getOptions();
            byte[] b = msg.getMessage().getBytesDirect();
            r.wireLength = msg.getMessage().getLength();
            r.wireSha = sha256(b, 0, r.wireLength);
            if (r.wireLength <= hexLimit) {
                r.wireHead = java.util.Arrays.copyOf(b, r.wireLength);
            }
            Received outer = RECEIVED.get();
            RECEIVED.set(r);
            try {
                super.messageReceived(msg);
            } finally {
                RECEIVED.set(outer);
                if (!r.delivered) {
                    Json j = Json.event("dropped").put("wireOptions", r.wireOptions)
                            .put("wireLength", r.wireLength).put("wireSha256", r.wireSha)
                            .put("msgId", hex(msg.getUniqueId())).put("timestamp", msg.getTimestamp())
                            .put("source", member(msg.getAddress()));
                    if (r.wireHead != null) {
                        j.put("wirePayload", hex(r.wireHead));
                    }
                    emit(j);
                }
            }
        }
    }

    /** Sits at the top of the stack: exposes the message as the channel sees it to the listener. */
    static final class TopTap extends ChannelInterceptorBase {
        @Override
        public void messageReceived(ChannelMessage msg) {
            ChannelMessage outer = CURRENT.get();
            CURRENT.set(msg);
            try {
                super.messageReceived(msg);
            } finally {
                CURRENT.set(outer);
            }
        }
    }

    /** Thrown by the listener when told to, so the receiver answers FAIL_ACK. */
    static final class ListenerFailure extends RuntimeException {
        private static final long serialVersionUID = 1L;

        ListenerFailure() {
            super("TribesPeer: listener told to throw");
        }
    }

    // --------------------------------------------------------------- the peer

    final Config cfg;
    final GroupChannel channel = new GroupChannel();
    volatile boolean throwing;
    int startLevel;
    StaticMembershipInterceptor staticInterceptor;

    TribesPeer(Config cfg) {
        this.cfg = cfg;
        this.throwing = cfg.throwing;
    }

    void build() throws Exception {
        NioReceiver rx = (NioReceiver) channel.getChannelReceiver();
        rx.setAddress(cfg.address);
        rx.setPort(cfg.port);
        rx.setAutoBind(cfg.autoBind);

        McastService ms = (McastService) channel.getMembershipService();
        ms.setAddress(cfg.mcastAddress);
        ms.setPort(cfg.mcastPort);
        ms.setBind(cfg.mcastBind);
        ms.setFrequency(cfg.frequency);
        ms.setDropTime(cfg.dropTime);
        if (cfg.domain != null) {
            ms.setDomain(cfg.domain);
        }
        if (cfg.memberPayload != null) {
            ms.setPayload(cfg.memberPayload);
        }

        channel.addInterceptor(new TopTap());
        for (String spec : cfg.interceptors) {
            int colon = spec.indexOf(':');
            String name = colon < 0 ? spec : spec.substring(0, colon);
            String props = colon < 0 ? "" : spec.substring(colon + 1);
            Object o = Class.forName(interceptorClass(name)).getDeclaredConstructor().newInstance();
            applyProps(o, props);
            if (o instanceof StaticMembershipInterceptor) {
                staticInterceptor = (StaticMembershipInterceptor) o;
            }
            channel.addInterceptor((ChannelInterceptor) o);
        }
        channel.addInterceptor(new BottomTap(cfg.hexLimit));

        for (String s : cfg.statics) {
            if (staticInterceptor == null) {
                throw new IllegalArgumentException("-static needs -interceptor static");
            }
            String[] p = s.split(":");
            if (p.length < 3 || p.length > 4) {
                throw new IllegalArgumentException("-static wants HOST:PORT:UIDHEX[:DOMAIN], got " + s);
            }
            StaticMember m = new StaticMember(p[0], Integer.parseInt(p[1]), 0);
            m.setUniqueId(unhex(p[2]));
            if (p.length == 4) {
                m.setDomain(p[3]);
            }
            staticInterceptor.addStaticMember(m);
        }

        if (cfg.localMember != null) {
            if (staticInterceptor == null) {
                throw new IllegalArgumentException("-localMember needs -interceptor static");
            }
            String[] p = cfg.localMember.split(":");
            if (p.length < 1 || p.length > 2) {
                throw new IllegalArgumentException("-localMember wants UIDHEX[:DOMAIN], got " + cfg.localMember);
            }
            StaticMember m = new StaticMember();
            m.setUniqueId(unhex(p[0]));
            if (p.length == 2) {
                m.setDomain(p[1]);
            }
            staticInterceptor.setLocalMember(m);
        }

        for (String s : cfg.sets) {
            int dot = s.indexOf('.');
            int eq = s.indexOf('=');
            if (dot < 0 || eq < dot) {
                throw new IllegalArgumentException("-set wants TARGET.prop=value, got " + s);
            }
            String target = s.substring(0, dot);
            Object o;
            switch (target) {
                case "channel":
                    o = channel;
                    break;
                case "receiver":
                    o = rx;
                    break;
                case "transmitter":
                    o = channel.getChannelSender();
                    break;
                case "sender":
                    o = ((ReplicationTransmitter) channel.getChannelSender()).getTransport();
                    break;
                case "mcast":
                    o = ms;
                    break;
                default:
                    throw new IllegalArgumentException("unknown -set target " + target);
            }
            setProperty(o, s.substring(dot + 1, eq), s.substring(eq + 1));
        }

        channel.addMembershipListener(new MembershipListener() {
            @Override
            public void memberAdded(Member m) {
                emit(Json.event("memberAdded").put("member", member(m)));
            }

            @Override
            public void memberDisappeared(Member m) {
                emit(Json.event("memberDisappeared").put("member", member(m)));
            }
        });
        channel.addChannelListener(new ChannelListener() {
            @Override
            public boolean accept(Serializable msg, Member sender) {
                return true;
            }

            @Override
            public void messageReceived(Serializable msg, Member sender) {
                onMessage(msg, sender);
            }
        });
    }

    void onMessage(Serializable msg, Member sender) {
        ChannelMessage cm = CURRENT.get();
        Received r = RECEIVED.get();
        if (r != null) {
            r.delivered = true;
        }
        boolean fail = throwing;
        Json j = Json.event("message");
        if (cm != null) {
            j.put("options", cm.getOptions()).put("msgId", hex(cm.getUniqueId())).put("timestamp", cm.getTimestamp());
        }
        if (r != null) {
            j.put("wireOptions", r.wireOptions).put("wireLength", r.wireLength).put("wireSha256", r.wireSha);
        }
        j.put("source", member(sender));
        byte[] data = null;
        if (msg instanceof ByteMessage) {
            j.put("kind", "bytes").put("class", msg.getClass().getName());
            data = ((ByteMessage) msg).getMessage();
        } else {
            j.put("kind", "object").put("class", msg == null ? "null" : msg.getClass().getName());
            if (msg instanceof byte[]) {
                data = (byte[]) msg;
            } else if (msg instanceof String) {
                data = ((String) msg).getBytes(StandardCharsets.UTF_8);
                j.put("text", (String) msg);
            }
        }
        if (data != null) {
            j.put("length", data.length).put("sha256", sha256(data, 0, data.length));
            if (data.length <= cfg.hexLimit) {
                j.put("payload", hex(data));
            }
        }
        j.put("threw", fail);
        emit(j);
        if (fail) {
            throw new ListenerFailure();
        }
    }

    void start() throws Exception {
        startLevel = cfg.startLevel >= 0 ? cfg.startLevel
                : cfg.membership ? Channel.DEFAULT : (Channel.SND_RX_SEQ | Channel.SND_TX_SEQ);
        channel.start(startLevel);
        emit(Json.event("ready").put("member", member(channel.getLocalMember(true)))
                .put("startLevel", startLevel).put("tribesVersion", tribesVersion())
                .put("javaVersion", System.getProperty("java.version")));
    }

    static String tribesVersion() {
        try {
            String path = GroupChannel.class.getProtectionDomain().getCodeSource().getLocation().getPath();
            try (JarFile jf = new JarFile(path)) {
                String v = jf.getManifest().getMainAttributes().getValue("Bundle-Version");
                return v == null ? "" : v;
            }
        } catch (Exception e) {
            return "";
        }
    }

    // ---------------------------------------------------------------- commands

    static final class Payload {
        Serializable msg;
        byte[] bytes; // the raw bytes of a ByteMessage
    }

    static byte[] payloadBytes(String spec) {
        if (spec.equals("-")) {
            return new byte[0];
        }
        if (spec.startsWith("@")) {
            int n = Integer.parseInt(spec.substring(1));
            byte[] b = new byte[n];
            for (int i = 0; i < n; i++) {
                b[i] = (byte) (i % 251);
            }
            return b;
        }
        return unhex(spec);
    }

    static Payload payload(String spec) {
        Payload p = new Payload();
        if (spec.startsWith("str:")) {
            p.msg = new String(payloadBytes(spec.substring(4)), StandardCharsets.UTF_8);
        } else if (spec.startsWith("arr:")) {
            p.msg = payloadBytes(spec.substring(4));
        } else {
            p.bytes = payloadBytes(spec);
            p.msg = new ByteMessage(p.bytes);
        }
        return p;
    }

    static Member destination(String host, String port, String uid) throws Exception {
        MemberImpl m = new MemberImpl(host, Integer.parseInt(port), 0);
        m.setUniqueId(unhex(uid));
        return m;
    }

    /** Reports the outcome of asynchronous sends once all of them ended. */
    static final class AsyncReport implements ErrorHandler {
        final int cmd;
        final AtomicInteger left;
        final AtomicInteger failed = new AtomicInteger();
        final AtomicReference<String> firstError = new AtomicReference<>();

        AsyncReport(int cmd, int count) {
            this.cmd = cmd;
            this.left = new AtomicInteger(count);
        }

        @Override
        public void handleError(ChannelException x, UniqueId id) {
            failed.incrementAndGet();
            firstError.compareAndSet(null, describe(x));
            done();
        }

        @Override
        public void handleCompletion(UniqueId id) {
            done();
        }

        /** Counts one send as ended without going through the handler (a synchronous exception). */
        void done() {
            if (left.decrementAndGet() == 0) {
                Json j = Json.event("asyncResult").put("cmd", cmd).put("ok", failed.get() == 0)
                        .put("failed", failed.get());
                if (firstError.get() != null) {
                    j.put("error", firstError.get());
                }
                emit(j);
            }
        }
    }

    void cmdSend(int cmd, String[] t) throws Exception {
        if (t.length != 6) {
            throw new IllegalArgumentException("send H P UIDHEX OPTIONS PAYLOAD");
        }
        Member to = destination(t[1], t[2], t[3]);
        int options = Integer.decode(t[4]);
        Payload p = payload(t[5]);
        boolean async = (options & Channel.SEND_OPTIONS_ASYNCHRONOUS) != 0;
        AsyncReport rep = async ? new AsyncReport(cmd, 1) : null;
        Json j = Json.event("sendResult").put("cmd", cmd);
        try {
            UniqueId id = channel.send(new Member[] { to }, p.msg, options, rep);
            j.put("ok", true).put("msgId", id == null ? "" : hex(id.getBytes()));
        } catch (ChannelException x) {
            j.put("ok", false).put("error", describe(x));
            if (rep != null) {
                rep.failed.incrementAndGet();
                rep.firstError.compareAndSet(null, describe(x));
                rep.done();
            }
        }
        emit(j);
    }

    void cmdBurst(int cmd, String[] t) throws Exception {
        if (t.length != 8) {
            throw new IllegalArgumentException("burst COUNT THREADS H P UIDHEX OPTIONS PAYLOAD");
        }
        final int count = Integer.parseInt(t[1]);
        int threads = Math.max(1, Integer.parseInt(t[2]));
        final Member to = destination(t[3], t[4], t[5]);
        final int options = Integer.decode(t[6]);
        final byte[] tail = payloadBytes(t[7]);
        boolean async = (options & Channel.SEND_OPTIONS_ASYNCHRONOUS) != 0;
        final AsyncReport rep = async && count > 0 ? new AsyncReport(cmd, count) : null;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger sent = new AtomicInteger();
        final AtomicInteger failed = new AtomicInteger();
        final AtomicReference<String> firstError = new AtomicReference<>();
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        List<Future<?>> fs = new ArrayList<>();
        for (int w = 0; w < threads; w++) {
            fs.add(pool.submit(() -> {
                for (int k; (k = next.getAndIncrement()) < count;) {
                    byte[] b = new byte[4 + tail.length];
                    b[0] = (byte) (k >>> 24);
                    b[1] = (byte) (k >>> 16);
                    b[2] = (byte) (k >>> 8);
                    b[3] = (byte) k;
                    System.arraycopy(tail, 0, b, 4, tail.length);
                    try {
                        channel.send(new Member[] { to }, new ByteMessage(b), options, rep);
                        sent.incrementAndGet();
                    } catch (ChannelException x) {
                        failed.incrementAndGet();
                        firstError.compareAndSet(null, describe(x));
                        if (rep != null) {
                            rep.failed.incrementAndGet();
                            rep.firstError.compareAndSet(null, describe(x));
                            rep.done();
                        }
                    }
                }
                return null;
            }));
        }
        for (Future<?> f : fs) {
            f.get();
        }
        pool.shutdown();
        Json j = Json.event("sendResult").put("cmd", cmd).put("ok", failed.get() == 0).put("sent", sent.get())
                .put("failed", failed.get());
        if (firstError.get() != null) {
            j.put("error", firstError.get());
        }
        emit(j);
    }

    void cmdMembers(int cmd) {
        List<Json> ms = new ArrayList<>();
        for (Member m : channel.getMembers()) {
            ms.add(member(m));
        }
        emit(Json.event("members").put("cmd", cmd).put("members", ms));
    }

    void stop(int cmd) {
        Json j = Json.event("stopped").put("cmd", cmd);
        try {
            channel.stop(startLevel);
            j.put("ok", true);
        } catch (Exception e) {
            j.put("ok", false).put("error", describe(e));
        }
        emit(j);
    }

    void serve() throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        int cmd = 0;
        for (String line; (line = in.readLine()) != null;) {
            cmd++;
            String[] t = line.trim().split("\\s+");
            try {
                switch (t[0]) {
                    case "send":
                        cmdSend(cmd, t);
                        break;
                    case "burst":
                        cmdBurst(cmd, t);
                        break;
                    case "members":
                        cmdMembers(cmd);
                        break;
                    case "throw":
                        if (t.length != 2 || !(t[1].equals("on") || t[1].equals("off"))) {
                            throw new IllegalArgumentException("throw on|off");
                        }
                        throwing = t[1].equals("on");
                        emit(Json.event("throw").put("cmd", cmd).put("on", throwing));
                        break;
                    case "ping":
                        emit(Json.event("pong").put("cmd", cmd));
                        break;
                    case "stop":
                        stop(cmd);
                        return;
                    default:
                        throw new IllegalArgumentException("unknown command " + t[0]);
                }
            } catch (Exception e) {
                emit(Json.event("error").put("cmd", cmd).put("error", describe(e)));
            }
        }
        stop(cmd + 1);
    }

    static void setupLogging(String level) {
        Level l = Level.parse(level);
        Logger root = Logger.getLogger("");
        root.setLevel(l);
        for (Handler h : root.getHandlers()) {
            h.setLevel(l);
        }
    }

    public static void main(String[] args) {
        System.setOut(System.err); // stray prints must not corrupt the event stream
        TribesPeer p;
        try {
            Config cfg = Config.parse(args);
            setupLogging(cfg.logLevel);
            Thread watchdog = new Thread(() -> {
                try {
                    Thread.sleep(cfg.maxLifetime * 1000);
                } catch (InterruptedException e) {
                    return;
                }
                emit(Json.event("fatal").put("error", "maxLifetime of " + cfg.maxLifetime + " s expired"));
                Runtime.getRuntime().halt(3);
            }, "TribesPeer-watchdog");
            watchdog.setDaemon(true);
            watchdog.start();
            p = new TribesPeer(cfg);
            p.build();
            p.start();
        } catch (Throwable e) {
            emit(Json.event("fatal").put("error", describe(e)));
            e.printStackTrace();
            System.exit(2);
            return;
        }
        try {
            p.serve();
        } catch (Throwable e) {
            emit(Json.event("fatal").put("error", describe(e)));
            e.printStackTrace();
        }
        System.exit(0);
    }
}
