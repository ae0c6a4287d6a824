package kindling.runtime.user;

import com.amazonaws.services.lambda.runtime.Client;
import com.amazonaws.services.lambda.runtime.ClientContext;
import java.util.Map;

public final class ClientContextImpl implements ClientContext {
    private final Client client;
    private final Map<String, String> custom;
    private final Map<String, String> environment;

    public ClientContextImpl(Client client, Map<String, String> custom, Map<String, String> environment) {
        this.client = client;
        this.custom = custom;
        this.environment = environment;
    }

    @Override
    public Client getClient() {
        return client;
    }

    @Override
    public Map<String, String> getCustom() {
        return custom;
    }

    @Override
    public Map<String, String> getEnvironment() {
        return environment;
    }

    @Override
    public String toString() {
        return "ClientContext(client=" + client + ", custom=" + custom + ", env=" + environment + ")";
    }

    /** Creates instances from the runtime's side without reflection: {@code apply(new Object[] {...})}. */
    public static final class Factory implements java.util.function.Function<Object[], Object> {
        @Override
        @SuppressWarnings("unchecked")
        public Object apply(Object[] a) {
            return new ClientContextImpl((Client) a[0], (Map<String, String>) a[1], (Map<String, String>) a[2]);
        }
    }
}
