package kindling.runtime.user;

import com.amazonaws.services.lambda.runtime.Client;

public final class ClientImpl implements Client {
    private final String installationId;
    private final String appTitle;
    private final String appVersionName;
    private final String appVersionCode;
    private final String appPackageName;

    public ClientImpl(String installationId, String appTitle, String appVersionName, String appVersionCode,
            String appPackageName) {
        this.installationId = installationId;
        this.appTitle = appTitle;
        this.appVersionName = appVersionName;
        this.appVersionCode = appVersionCode;
        this.appPackageName = appPackageName;
    }

    @Override
    public String getInstallationId() {
        return installationId;
    }

    @Override
    public String getAppTitle() {
        return appTitle;
    }

    @Override
    public String getAppVersionName() {
        return appVersionName;
    }

    @Override
    public String getAppVersionCode() {
        return appVersionCode;
    }

    @Override
    public String getAppPackageName() {
        return appPackageName;
    }

    @Override
    public String toString() {
        return "Client(installation_id=" + installationId + ", app_title=" + appTitle + ", app_package_name=" + appPackageName + ")";
    }

    /** Creates instances from the runtime's side without reflection: {@code apply(new Object[] {...})}. */
    public static final class Factory implements java.util.function.Function<Object[], Object> {
        @Override
        public Object apply(Object[] a) {
            return new ClientImpl((String) a[0], (String) a[1], (String) a[2], (String) a[3], (String) a[4]);
        }
    }
}
