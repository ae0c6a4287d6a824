/**
 * Implementations of the aws-lambda-java-core interfaces (Context, LambdaLogger, CognitoIdentity,
 * ClientContext, Client), compiled against {@code runtimes/java/api} but never loaded by the
 * runtime's own class loader: {@link kindling.runtime.UserTypes} defines them in a child of the
 * function's class loader, so they implement the function's own copy of the interfaces. They use
 * only JDK types and those interfaces. Faster than {@link java.lang.reflect.Proxy} (whose first
 * use costs 10-20 ms of a cold start); the runtime falls back to proxies when a function's copy of
 * the library does not fit these classes.
 */
package kindling.runtime.user;
