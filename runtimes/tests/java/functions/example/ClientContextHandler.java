package example;

import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.CognitoIdentity;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

public class ClientContextHandler implements RequestHandler<Map<String, Object>, Map<String, Object>> {
    @Override
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        Map<String, Object> result = new LinkedHashMap<>();
        ClientContext cc = context.getClientContext();
        if (cc == null) {
            result.put("client_context", null);
        } else {
            Map<String, Object> fields = new LinkedHashMap<>();
            fields.put("installation_id", cc.getClient().getInstallationId());
            fields.put("app_title", cc.getClient().getAppTitle());
            fields.put("app_package_name", cc.getClient().getAppPackageName());
            fields.put("custom", cc.getCustom());
            fields.put("env", cc.getEnvironment());
            result.put("client_context", fields);
        }
        CognitoIdentity identity = context.getIdentity();
        result.put("identity", identity == null ? Arrays.asList(null, null)
                : Arrays.asList(identity.getIdentityId(), identity.getIdentityPoolId()));
        result.put("tenant_id", context.getTenantId());
        return result;
    }
}
