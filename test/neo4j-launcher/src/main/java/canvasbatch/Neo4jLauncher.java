package canvasbatch;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;

/**
 * Test-only: an embedded Neo4j 5 (Community) with Bolt on 127.0.0.1, for canvas-batch's Neo4j tests and CI.
 *
 * <pre>
 * java -cp target/classes:$(cat target/classpath.txt) canvasbatch.Neo4jLauncher [--port N] [--data DIR] [--password PW]
 * </pre>
 *
 * <ul>
 *   <li>{@code --port}: Bolt port on 127.0.0.1; 0 or absent picks a free one.
 *   <li>{@code --data}: the database folder. Kept on exit, so a second start on the same folder (and port) continues
 *       where the first stopped. Absent: a fresh temporary folder, deleted on exit.
 *   <li>{@code --password}: the password of user {@code neo4j} (default {@code canvas-batch-test}); auth is on.
 * </ul>
 *
 * Prints {@code READY bolt://127.0.0.1:PORT} on stdout once Bolt accepts connections. Stops cleanly on SIGTERM,
 * SIGINT or when stdin closes (so it never outlives the process that started it through a pipe); {@code --no-stdin}
 * turns the last one off.
 */
public final class Neo4jLauncher {
  private Neo4jLauncher() {}

  public static void main(String[] args) throws Exception {
    int port = 0;
    Path data = null;
    String password = "canvas-batch-test";
    boolean watchStdin = true;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--port" -> port = Integer.parseInt(args[++i]);
        case "--data" -> data = Path.of(args[++i]).toAbsolutePath();
        case "--password" -> password = args[++i];
        case "--no-stdin" -> watchStdin = false;
        default -> {
          System.err.println("unknown argument: " + args[i]);
          System.exit(2);
        }
      }
    }
    if (password.length() < 8) {
      System.err.println("--password needs at least 8 characters (Neo4j's minimum)");
      System.exit(2);
    }
    if (port == 0) port = freePort();
    final boolean throwaway = data == null;
    final Path home = throwaway ? Files.createTempDirectory("neo4j-launcher-") : data;
    Files.createDirectories(home);

    long started = System.nanoTime();
    DatabaseManagementService dbms =
        new DatabaseManagementServiceBuilder(home)
            .setConfig(BoltConnector.enabled, true)
            .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
            .setConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port))
            .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
            .setConfig(HttpConnector.enabled, false)
            .setConfig(HttpsConnector.enabled, false)
            .setConfig(GraphDatabaseSettings.auth_enabled, true)
            .setConfig(GraphDatabaseSettings.pagecache_memory, 64L * 1024 * 1024)
            .setConfig(GraphDatabaseSettings.shutdown_transaction_end_timeout, Duration.ofSeconds(2))
            .build();

    CountDownLatch stopped = new CountDownLatch(1);
    Runnable stop =
        () -> {
          try {
            dbms.shutdown();
          } finally {
            if (throwaway) deleteQuietly(home);
            stopped.countDown();
          }
        };
    Runtime.getRuntime().addShutdownHook(new Thread(stop, "neo4j-launcher-shutdown"));

    // auth on, with a known password that needs no change (a fresh store asks for one; a reused one may have it)
    try {
      dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME)
          .executeTransactionally(
              "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", password));
    } catch (RuntimeException e) {
      if (!String.valueOf(e.getMessage()).contains("cannot be the same")) {
        System.err.println("cannot set the password of user neo4j: " + e.getMessage());
        System.exit(1); // the shutdown hook stops the database
      }
    }

    long ms = (System.nanoTime() - started) / 1_000_000;
    System.out.println("READY bolt://127.0.0.1:" + port + " data=" + home + " startup_ms=" + ms);
    System.out.flush();

    if (watchStdin) {
      Thread watcher =
          new Thread(
              () -> {
                try {
                  while (System.in.read() != -1) {
                    // ignore input; end of input means our parent went away
                  }
                } catch (IOException ignored) {
                  // same: treat as closed
                }
                System.exit(0);
              },
              "neo4j-launcher-stdin");
      watcher.setDaemon(true);
      watcher.start();
    }
    stopped.await();
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private static void deleteQuietly(Path root) {
    try {
      Files.walkFileTree(
          root,
          new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
              Files.deleteIfExists(file);
              return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path dir, IOException exc) throws IOException {
              Files.deleteIfExists(dir);
              return FileVisitResult.CONTINUE;
            }
          });
    } catch (IOException ignored) {
      // a throwaway folder under the temp dir: the OS cleans what is left
    }
  }
}
