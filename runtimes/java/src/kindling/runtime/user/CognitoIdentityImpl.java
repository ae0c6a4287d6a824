package kindling.runtime.user;

import com.amazonaws.services.lambda.runtime.CognitoIdentity;

public final class CognitoIdentityImpl implements CognitoIdentity {
    private final String identityId;
    private final String identityPoolId;

    public CognitoIdentityImpl(String identityId, String identityPoolId) {
        this.identityId = identityId;
        this.identityPoolId = identityPoolId;
    }

    @Override
    public String getIdentityId() {
        return identityId;
    }

    @Override
    public String getIdentityPoolId() {
        return identityPoolId;
    }

    @Override
    public String toString() {
        return "CognitoIdentity(cognitoIdentityId=" + identityId + ", cognitoIdentityPoolId=" + identityPoolId + ")";
    }

    /** Creates instances from the runtime's side without reflection: {@code apply(new Object[] {...})}. */
    public static final class Factory implements java.util.function.Function<Object[], Object> {
        @Override
        public Object apply(Object[] a) {
            return new CognitoIdentityImpl((String) a[0], (String) a[1]);
        }
    }
}
