// The cross-language workload, with the PostgreSQL JDBC driver.
//
// Connects with the settings in PAMTRAIL_WORKLOAD_* and prints one JSON
// document of what the client saw, so a run through pamtrail can be
// compared with a direct one. Wire texts match the other languages'
// (the driver turns ? into $1..$n).
import java.io.ByteArrayOutputStream;
import java.io.StringReader;
import java.math.BigDecimal;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

public class Workload {
    static final String INSERT = "insert into w values (?, ?, ?, ?, ?, ?)";

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + System.getenv("PAMTRAIL_WORKLOAD_HOST") + ":" + System.getenv("PAMTRAIL_WORKLOAD_PORT")
                + "/" + System.getenv("PAMTRAIL_WORKLOAD_DBNAME") + "?sslmode=disable";
        Properties props = new Properties();
        props.setProperty("user", System.getenv("PAMTRAIL_WORKLOAD_USER"));
        props.setProperty("password", System.getenv("PAMTRAIL_WORKLOAD_PASSWORD"));
        List<String> out = new ArrayList<>();
        try (Connection c = DriverManager.getConnection(url, props); Statement st = c.createStatement()) {
            out.add(step("simple", "\"rows\": " + rows(st.executeQuery("select 1 as one, 'two' as two"))));

            st.execute("create temp table w(id int primary key, name text, amount numeric, at timestamptz, ok bool, data bytea)");
            try (PreparedStatement ins = c.prepareStatement(INSERT)) {
                insert(ins, 1, "one", new BigDecimal("1.50"), OffsetDateTime.parse("2024-01-02T03:04:05Z"), true, new byte[] {0, 1});
                ins.executeUpdate();
                insert(ins, 2, "it's", new BigDecimal("-2.25"), OffsetDateTime.parse("2024-02-29T23:59:59Z"), false, new byte[] {(byte) 255});
                ins.executeUpdate();
                insert(ins, 3, null, null, null, null, null);
                ins.executeUpdate();
                // A batch: the driver pipelines the inserts before one Sync.
                for (int i = 0; i < 3; i++) {
                    insert(ins, 10 + i, "batch " + i, new BigDecimal(i), null, i % 2 == 0, null);
                    ins.addBatch();
                }
                ins.executeBatch();
            }
            try (PreparedStatement q = c.prepareStatement("select id, name, amount, at, ok, data from w where id = ?")) {
                q.setInt(1, 2);
                out.add(step("prepared", "\"rows\": " + rows(q.executeQuery())));
            }
            out.add(step("pipeline", "\"count\": " + scalar(st, "select count(*) from w")));

            CopyManager copy = c.unwrap(PGConnection.class).getCopyAPI();
            StringBuilder in = new StringBuilder();
            for (int i = 1000; i < 2000; i++) in.append(i).append("\tcopied ").append(i).append('\n');
            copy.copyIn("copy w (id, name) from stdin", new StringReader(in.toString()));
            ByteArrayOutputStream data = new ByteArrayOutputStream();
            copy.copyOut("copy (select id, name from w order by id) to stdout", data);
            out.add(step("copy", "\"bytes\": " + data.size() + ", \"md5\": \"" + md5(data.toByteArray()) + "\""));

            List<String> tx = new ArrayList<>();
            st.execute("begin");
            st.execute("insert into w (id, name) values (20, 'tx')");
            try {
                st.execute("insert into w (id, name) values (20, 'dup')");
                tx.add("\"no error\"");
            } catch (SQLException e) {
                tx.add("{\"error\": \"" + e.getSQLState() + "\"}");
            }
            st.execute("rollback");
            tx.add(scalar(st, "select count(*) from w where id = 20"));
            out.add(step("transaction", "\"result\": [" + String.join(", ", tx) + "]"));

            MessageDigest h = MessageDigest.getInstance("MD5");
            int n = 0;
            try (ResultSet rs = st.executeQuery("select g, md5(g::text) from generate_series(1, 100000) g")) {
                while (rs.next()) {
                    h.update((rs.getInt(1) + " " + rs.getString(2) + "\n").getBytes("UTF-8"));
                    n++;
                }
            }
            out.add(step("large", "\"rows\": " + n + ", \"md5\": \"" + hex(h.digest()) + "\""));

            Thread canceller = new Thread(() -> {
                try {
                    Thread.sleep(300);
                    st.cancel();
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            long start = System.nanoTime();
            canceller.start();
            String result;
            try {
                st.execute("select pg_sleep(30)");
                result = "\"not cancelled\"";
            } catch (SQLException e) {
                result = "{\"error\": \"" + e.getSQLState() + "\"}";
            }
            canceller.join();
            boolean quick = System.nanoTime() - start < 10_000_000_000L;
            out.add(step("cancel", "\"result\": " + result + ", \"quick\": " + quick));

            out.add(step("final", "\"count\": " + scalar(st, "select count(*) from w")));
        }
        System.out.println("[\n" + String.join(",\n", out) + "\n]");
        // The driver's cancel machinery leaves a timer thread that would
        // hold the JVM for seconds.
        System.exit(0);
    }

    static void insert(PreparedStatement ins, int id, String name, BigDecimal amount, OffsetDateTime at, Boolean ok, byte[] data)
            throws SQLException {
        ins.setInt(1, id);
        ins.setString(2, name);
        ins.setBigDecimal(3, amount);
        if (at == null) ins.setNull(4, Types.TIMESTAMP_WITH_TIMEZONE); else ins.setObject(4, at);
        if (ok == null) ins.setNull(5, Types.BOOLEAN); else ins.setBoolean(5, ok);
        ins.setBytes(6, data);
    }

    static String step(String name, String body) {
        return " {\"step\": \"" + name + "\", " + body + "}";
    }

    static String scalar(Statement st, String sql) throws SQLException {
        try (ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getString(1);
        }
    }

    static String rows(ResultSet rs) throws SQLException {
        List<String> rows = new ArrayList<>();
        int cols = rs.getMetaData().getColumnCount();
        while (rs.next()) {
            List<String> vals = new ArrayList<>();
            for (int i = 1; i <= cols; i++) vals.add(quote(String.valueOf(rs.getString(i))));
            rows.add("[" + String.join(", ", vals) + "]");
        }
        rs.close();
        return "[" + String.join(", ", rows) + "]";
    }

    static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    static String md5(byte[] b) throws Exception {
        return hex(MessageDigest.getInstance("MD5").digest(b));
    }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) sb.append(String.format("%02x", x));
        return sb.toString();
    }
}
