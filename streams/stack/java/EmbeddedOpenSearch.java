/*
 * A single OpenSearch node embedded in a plain JVM, for esatrack's local stack.
 *
 * Usage: java -cp "lib/*:classes" EmbeddedOpenSearch <path.home>
 *
 * <path.home>/config holds opensearch.yml and log4j2.properties (written by
 * `esatrack stack up`). The node is built the way OpenSearch's own test framework builds
 * one: a Node subclass that passes the module plugins found on the classpath to the
 * protected constructor. The distribution's bootstrap (security manager, jar-hell and
 * production checks) is not involved. SIGTERM closes the node through a shutdown hook.
 */

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

public final class EmbeddedOpenSearch {

    /** Module plugins a distribution ships in modules/; each is loaded if its jar is present. */
    private static final String[] MODULE_PLUGINS = {
        "org.opensearch.transport.Netty4Plugin",
        "org.opensearch.analysis.common.CommonAnalysisPlugin",
        "org.opensearch.index.mapper.MapperExtrasPlugin",
        "org.opensearch.index.reindex.ReindexPlugin",
        "org.opensearch.painless.PainlessPlugin",
        "org.opensearch.join.ParentJoinPlugin",
        "org.opensearch.ingest.common.IngestCommonPlugin",
        "org.opensearch.script.mustache.MustachePlugin",
    };

    private EmbeddedOpenSearch() {}

    /** Node's classpath-plugin constructor is protected: this subclass is the way in. */
    private static final class EmbeddedNode extends Node {
        EmbeddedNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
            super(environment, plugins, true);
        }
    }

    static List<Class<? extends Plugin>> modulePlugins() {
        List<Class<? extends Plugin>> found = new ArrayList<>();
        for (String name : MODULE_PLUGINS) {
            try {
                found.add(Class.forName(name).asSubclass(Plugin.class));
            } catch (ClassNotFoundException e) {
                System.err.println("esatrack: module " + name + " not on the classpath, skipped");
            }
        }
        return found;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: EmbeddedOpenSearch <path.home>");
            System.exit(64);
        }
        Path home = Paths.get(args[0]).toAbsolutePath();
        Settings input = Settings.builder().put("path.home", home.toString()).build();
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            input, Collections.emptyMap(), home.resolve("config"), () -> "esatrack-local");
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(environment.settings()));
        LogConfigurator.configure(environment);

        Node node = new EmbeddedNode(environment, modulePlugins());
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                closed.countDown();
            }
        }, "esatrack-shutdown"));
        node.start();
        closed.await();  // keeps the JVM alive until the shutdown hook has closed the node
    }
}
