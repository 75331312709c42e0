import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.Properties;

/**
 * MariaDB Connector/J workload: server-side prepared statements, batches,
 * a transaction and an error, run direct and through the gateway; what it
 * prints must be identical. Settings come from PAMTRAIL_WORKLOAD_*.
 */
public class Workload {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:mariadb://" + System.getenv("PAMTRAIL_WORKLOAD_HOST") + ":"
                + System.getenv("PAMTRAIL_WORKLOAD_PORT") + "/" + System.getenv("PAMTRAIL_WORKLOAD_DBNAME");
        Properties p = new Properties();
        p.setProperty("user", System.getenv("PAMTRAIL_WORKLOAD_USER"));
        p.setProperty("password", System.getenv("PAMTRAIL_WORKLOAD_PASSWORD"));
        p.setProperty("useServerPrepStmts", "true");
        p.setProperty("allowPublicKeyRetrieval", "true");
        p.setProperty("connectTimeout", "10000");
        String ca = System.getenv("PAMTRAIL_WORKLOAD_CA");
        if (ca != null && !ca.isEmpty()) {
            p.setProperty("sslMode", "verify-ca");
            p.setProperty("serverSslCert", ca);
        }
        try (Connection c = DriverManager.getConnection(url, p)) {
            try (Statement s = c.createStatement()) {
                s.execute("DROP TABLE IF EXISTS jdbc_items");
                s.execute("CREATE TABLE jdbc_items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), "
                        + "price DECIMAL(8,2), seen DATETIME(6), data BLOB)");
            }
            try (PreparedStatement ps = c.prepareStatement(
                    "INSERT INTO jdbc_items (name, price, seen, data) VALUES (?, ?, ?, ?)",
                    Statement.RETURN_GENERATED_KEYS)) {
                ps.setString(1, "café");
                ps.setBigDecimal(2, new BigDecimal("12.50"));
                ps.setTimestamp(3, Timestamp.valueOf("2026-12-03 10:00:00.123"));
                ps.setBytes(4, new byte[] {0, 1, 2});
                System.out.println("insert " + ps.executeUpdate());
                try (ResultSet keys = ps.getGeneratedKeys()) {
                    keys.next();
                    System.out.println("generated key " + keys.getLong(1));
                }
                for (int i = 0; i < 3; i++) {
                    ps.setString(1, "n" + i);
                    ps.setBigDecimal(2, BigDecimal.valueOf(i));
                    ps.setNull(3, java.sql.Types.TIMESTAMP);
                    ps.setNull(4, java.sql.Types.BLOB);
                    System.out.println("insert " + ps.executeUpdate());
                }
            }
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT id, name, price, seen, data FROM jdbc_items WHERE id >= ? ORDER BY id")) {
                ps.setInt(1, 1);
                print("select", ps.executeQuery());
                ps.setInt(1, 3);
                print("select again", ps.executeQuery());
            }
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("UPDATE jdbc_items SET price = price + ? WHERE id = ?")) {
                ps.setInt(1, 5);
                ps.setInt(2, 2);
                System.out.println("update " + ps.executeUpdate());
            }
            c.rollback();
            c.setAutoCommit(true);
            try (Statement s = c.createStatement()) {
                print("after rollback", s.executeQuery("SELECT id, price FROM jdbc_items WHERE id = 2"));
                try {
                    s.executeQuery("SELECT * FROM jdbc_no_such_table");
                } catch (SQLException e) {
                    System.out.println("error " + e.getErrorCode() + " " + e.getSQLState());
                }
            }
        }
    }

    static void print(String label, ResultSet rs) throws SQLException {
        ResultSetMetaData md = rs.getMetaData();
        StringBuilder cols = new StringBuilder(label + " columns");
        for (int i = 1; i <= md.getColumnCount(); i++) {
            cols.append(' ').append(md.getColumnLabel(i));
        }
        System.out.println(cols);
        while (rs.next()) {
            StringBuilder row = new StringBuilder(" ");
            for (int i = 1; i <= md.getColumnCount(); i++) {
                Object v = rs.getObject(i);
                if (v instanceof byte[]) {
                    v = java.util.Arrays.toString((byte[]) v);
                }
                row.append(' ').append(v);
            }
            System.out.println(row);
        }
        rs.close();
    }
}
