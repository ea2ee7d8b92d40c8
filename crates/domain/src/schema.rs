//! The SCIM schemas Scimitar serves, as data: every attribute with its type, mutability,
//! returnability and case rules (RFC 7643 sections 4 and 7, plus the Databricks
//! `ServicePrincipal` schema and the `entitlements`/`roles`/`groups` attributes Databricks adds).
//!
//! Validation, PATCH, filtering, projection and the `/Schemas` discovery document all read these
//! tables, so what the server advertises and what it does cannot drift apart.

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const SERVICE_PRINCIPAL_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal";
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttributeType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::String => "string",
            AttributeType::Boolean => "boolean",
            AttributeType::Decimal => "decimal",
            AttributeType::Integer => "integer",
            AttributeType::DateTime => "dateTime",
            AttributeType::Binary => "binary",
            AttributeType::Reference => "reference",
            AttributeType::Complex => "complex",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

/// One attribute of a schema (RFC 7643 section 7).
#[derive(Debug, Clone, Copy)]
pub struct AttributeDef {
    pub name: &'static str,
    pub kind: AttributeType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [AttributeDef],
    pub description: &'static str,
}

impl AttributeDef {
    const fn base(name: &'static str, kind: AttributeType, description: &'static str) -> Self {
        AttributeDef {
            name,
            kind,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
            description,
        }
    }
    const fn multi(self) -> Self {
        AttributeDef {
            multi_valued: true,
            ..self
        }
    }
    const fn required(self) -> Self {
        AttributeDef {
            required: true,
            ..self
        }
    }
    const fn case_exact(self) -> Self {
        AttributeDef {
            case_exact: true,
            ..self
        }
    }
    const fn mutability(self, mutability: Mutability) -> Self {
        AttributeDef { mutability, ..self }
    }
    const fn returned(self, returned: Returned) -> Self {
        AttributeDef { returned, ..self }
    }
    const fn unique(self) -> Self {
        AttributeDef {
            uniqueness: Uniqueness::Server,
            ..self
        }
    }
    const fn canonical(self, canonical_values: &'static [&'static str]) -> Self {
        AttributeDef {
            canonical_values,
            ..self
        }
    }
    const fn references(self, reference_types: &'static [&'static str]) -> Self {
        AttributeDef {
            reference_types,
            ..self
        }
    }

    pub fn is_complex(&self) -> bool {
        self.kind == AttributeType::Complex
    }

    /// Finds a sub-attribute by name, ignoring case as RFC 7643 section 2.1 requires.
    pub fn sub_attribute(&self, name: &str) -> Option<&'static AttributeDef> {
        self.sub_attributes
            .iter()
            .find(|sub| sub.name.eq_ignore_ascii_case(name))
    }
}

/// The longest value, in characters, of a string attribute that names or identifies something:
/// `userName`, `displayName`, `applicationId`, `externalId`, the parts of `name`, the `value`,
/// `display` and `type` of multi-valued attributes (emails, phone numbers, entitlements,
/// roles...). An email address is at most 254 characters (RFC 5321); Entra ID caps display
/// names at 256.
pub const MAX_NAME_CHARACTERS: usize = 256;

/// The longest value, in characters, of the string attributes that hold free text or an
/// address: `name.formatted`, `addresses.formatted` and `addresses.streetAddress`.
pub const MAX_TEXT_CHARACTERS: usize = 1024;

/// The longest value, in characters, of a reference (a URL such as `profileUrl` or a photo).
pub const MAX_REFERENCE_CHARACTERS: usize = 2048;

/// The longest value, in characters, of a binary attribute: a base64 X.509 certificate (a
/// typical one is 2 to 3 KiB in base64).
pub const MAX_BINARY_CHARACTERS: usize = 8 * 1024;

/// The most values one multi-valued attribute may hold (emails, phone numbers, entitlements,
/// roles, certificates...). Group `members` are not counted: a group may hold any number, and
/// one request's share of them is bounded by the body limit.
pub const MAX_ATTRIBUTE_VALUES: usize = 100;

/// The largest a resource's stored attributes may be, as JSON text (members, which are kept
/// apart, not counted). Real users are one to a few KiB; the bound is what keeps a list page of
/// [`crate::query::MAX_PAGE_SIZE`] resources, read whole from storage before the page's byte
/// budget applies, within a known size: at 32 KiB eight concurrent pages of the largest users
/// raised resident memory by 580 MiB (BENCHMARKS.md).
pub const MAX_RESOURCE_BYTES: usize = 16 * 1024;

impl AttributeDef {
    /// The longest value of this attribute, in characters, for the attributes that hold text;
    /// `None` for the others (booleans, numbers, dates, complex values).
    pub fn max_characters(&self) -> Option<usize> {
        match self.kind {
            AttributeType::String => Some(match self.name {
                "formatted" | "streetAddress" => MAX_TEXT_CHARACTERS,
                _ => MAX_NAME_CHARACTERS,
            }),
            AttributeType::Reference => Some(MAX_REFERENCE_CHARACTERS),
            AttributeType::Binary => Some(MAX_BINARY_CHARACTERS),
            _ => None,
        }
    }

    /// The most values of this attribute, for multi-valued attributes whose values are counted.
    pub fn max_values(&self) -> Option<usize> {
        (self.multi_valued && self.name != "members").then_some(MAX_ATTRIBUTE_VALUES)
    }

    /// The attribute's limits in words, for its `description` in the `/Schemas` document: RFC
    /// 7643 has no field for a maximum length. Empty when it has none.
    pub fn limits_text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(characters) = self.max_characters() {
            parts.push(format!("At most {characters} characters."));
        }
        if let Some(values) = self.max_values() {
            parts.push(format!("At most {values} values."));
        }
        parts.join(" ")
    }
}

const fn string(name: &'static str, description: &'static str) -> AttributeDef {
    AttributeDef::base(name, AttributeType::String, description)
}
const fn boolean(name: &'static str, description: &'static str) -> AttributeDef {
    AttributeDef::base(name, AttributeType::Boolean, description)
}
const fn reference(name: &'static str, description: &'static str) -> AttributeDef {
    AttributeDef::base(name, AttributeType::Reference, description)
}
const fn complex(
    name: &'static str,
    description: &'static str,
    sub_attributes: &'static [AttributeDef],
) -> AttributeDef {
    AttributeDef {
        sub_attributes,
        ..AttributeDef::base(name, AttributeType::Complex, description)
    }
}

/// `value`, `display`, `type`, `primary`: the sub-attributes most multi-valued attributes share.
macro_rules! plural_sub_attributes {
    ($value:expr, $types:expr) => {
        &[
            $value,
            string(
                "display",
                "A human-readable name, primarily used for display purposes.",
            ),
            string("type", "A label indicating the attribute's function.").canonical($types),
            boolean(
                "primary",
                "Whether this is the preferred value of the attribute.",
            ),
        ]
    };
}

pub const ENTITLEMENTS: AttributeDef = complex(
    "entitlements",
    "Entitlements of the principal, such as 'workspace-access' or 'databricks-sql-access'.",
    plural_sub_attributes!(string("value", "The entitlement name."), &[]),
)
.multi();

pub const ROLES: AttributeDef = complex(
    "roles",
    "Roles of the principal (instance-profile ARNs in a workspace, 'account_admin' in an account).",
    plural_sub_attributes!(string("value", "The role."), &[]),
)
.multi();

/// The groups a principal belongs to, directly or through nested groups. Never written by
/// clients: membership is changed on the group's `members`.
pub const GROUPS: AttributeDef = complex(
    "groups",
    "Groups the principal belongs to, directly ('direct') or through nested groups ('indirect').",
    &[
        string("value", "The id of the group.").mutability(Mutability::ReadOnly),
        reference("$ref", "The URI of the group.")
            .references(&["Group"])
            .mutability(Mutability::ReadOnly),
        string("display", "The group's displayName.").mutability(Mutability::ReadOnly),
        string("type", "'direct' or 'indirect'.")
            .canonical(&["direct", "indirect"])
            .mutability(Mutability::ReadOnly),
    ],
)
.multi()
.mutability(Mutability::ReadOnly);

pub const USER_ATTRIBUTES: &[AttributeDef] = &[
    string("userName", "Unique identifier for the User, typically an email address; unique per account regardless of case.")
        .required()
        .unique(),
    complex(
        "name",
        "The components of the user's real name.",
        &[
            string("formatted", "The full name, formatted for display."),
            string("familyName", "The family name."),
            string("givenName", "The given name."),
            string("middleName", "The middle name(s)."),
            string("honorificPrefix", "The honorific prefix(es), e.g. 'Ms.'."),
            string("honorificSuffix", "The honorific suffix(es), e.g. 'III'."),
        ],
    ),
    string("displayName", "The name of the User, suitable for display to end-users."),
    string("nickName", "The casual way to address the user."),
    reference("profileUrl", "A URI of the user's online profile.").references(&["external"]),
    string("title", "The user's title, such as 'Vice President'."),
    string("userType", "The relationship between the organization and the user."),
    string("preferredLanguage", "The user's preferred written or spoken language."),
    string("locale", "The user's default location for localisation."),
    string("timezone", "The user's time zone in IANA format, e.g. 'Europe/Paris'."),
    boolean("active", "The user's administrative status; inactive users have no access."),
    string("password", "The user's cleartext password, accepted on write, stored only as a hash and never returned.")
        .case_exact()
        .mutability(Mutability::WriteOnly)
        .returned(Returned::Never),
    complex(
        "emails",
        "Email addresses for the user.",
        plural_sub_attributes!(string("value", "An email address."), &["work", "home", "other"]),
    )
    .multi(),
    complex(
        "phoneNumbers",
        "Phone numbers for the user.",
        plural_sub_attributes!(
            string("value", "A phone number."),
            &["work", "home", "mobile", "fax", "pager", "other"]
        ),
    )
    .multi(),
    complex(
        "ims",
        "Instant messaging addresses for the user.",
        plural_sub_attributes!(
            string("value", "An instant messaging address."),
            &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]
        ),
    )
    .multi(),
    complex(
        "photos",
        "URLs of photos of the user.",
        plural_sub_attributes!(
            reference("value", "The URL of a photo.").references(&["external"]),
            &["photo", "thumbnail"]
        ),
    )
    .multi(),
    complex(
        "addresses",
        "Physical mailing addresses for the user.",
        &[
            string("formatted", "The full mailing address."),
            string("streetAddress", "The street address."),
            string("locality", "The city or locality."),
            string("region", "The state or region."),
            string("postalCode", "The zip code or postal code."),
            string("country", "The country name component."),
            string("type", "A label indicating the address's function.")
                .canonical(&["work", "home", "other"]),
            boolean("primary", "Whether this is the preferred mailing address."),
        ],
    )
    .multi(),
    GROUPS,
    ENTITLEMENTS,
    ROLES,
    complex(
        "x509Certificates",
        "DER-encoded X.509 certificates issued to the user, base64-encoded.",
        plural_sub_attributes!(
            AttributeDef::base("value", AttributeType::Binary, "The base64-encoded certificate."),
            &[]
        ),
    )
    .multi(),
];

pub const ENTERPRISE_USER_ATTRIBUTES: &[AttributeDef] = &[
    string(
        "employeeNumber",
        "A string identifier, typically numeric or alphanumeric, assigned by the organization.",
    ),
    string("costCenter", "The name of a cost center."),
    string("organization", "The name of an organization."),
    string("division", "The name of a division."),
    string("department", "The name of a department."),
    complex(
        "manager",
        "The user's manager.",
        &[
            string("value", "The id of the manager's User resource."),
            reference("$ref", "The URI of the manager's User resource.").references(&["User"]),
            string("displayName", "The manager's displayName.").mutability(Mutability::ReadOnly),
        ],
    ),
];

pub const GROUP_ATTRIBUTES: &[AttributeDef] = &[
    string(
        "displayName",
        "A human-readable name for the group; unique per account regardless of case.",
    )
    .required()
    .unique(),
    complex(
        "members",
        "The direct members of the group: users, service principals and groups.",
        &[
            string("value", "The id of the member.").mutability(Mutability::Immutable),
            reference("$ref", "The URI of the member.")
                .references(&["User", "Group", "ServicePrincipal"])
                .mutability(Mutability::Immutable),
            // Returned only when asked for (`attributes=members.display`): clients that PATCH a
            // member and compare the echo with what they sent do not expect a value they did not
            // send, and loading every member's name costs a join on large groups.
            string(
                "display",
                "The member's display name; returned only when requested.",
            )
            .mutability(Mutability::ReadOnly)
            .returned(Returned::Request),
            string("type", "The member's resource type.")
                .canonical(&["User", "Group", "ServicePrincipal"])
                .mutability(Mutability::Immutable),
        ],
    )
    .multi(),
    GROUPS,
    ENTITLEMENTS,
    ROLES,
];

pub const SERVICE_PRINCIPAL_ATTRIBUTES: &[AttributeDef] = &[
    string("applicationId", "The application (client) id of the service principal, a UUID; generated when not given, unique per account.")
        .unique(),
    string("displayName", "A human-readable name for the service principal."),
    boolean("active", "Whether the service principal is active; inactive principals have no access."),
    GROUPS,
    ENTITLEMENTS,
    ROLES,
];

/// `id`, `externalId` and `meta`: the attributes RFC 7643 section 3.1 gives every resource.
pub const COMMON_ATTRIBUTES: &[AttributeDef] = &[
    string(
        "id",
        "The server-assigned, unique identifier of the resource.",
    )
    .case_exact()
    .mutability(Mutability::ReadOnly)
    .returned(Returned::Always),
    string(
        "externalId",
        "An identifier of the resource in the provisioning client's domain.",
    )
    .case_exact(),
    complex(
        "meta",
        "Resource metadata.",
        &[
            string("resourceType", "The name of the resource type.")
                .case_exact()
                .mutability(Mutability::ReadOnly),
            AttributeDef::base(
                "created",
                AttributeType::DateTime,
                "When the resource was added.",
            )
            .mutability(Mutability::ReadOnly),
            AttributeDef::base(
                "lastModified",
                AttributeType::DateTime,
                "When the resource was last changed.",
            )
            .mutability(Mutability::ReadOnly),
            reference("location", "The URI of the resource.")
                .case_exact()
                .mutability(Mutability::ReadOnly),
            string("version", "The version (entity tag) of the resource.")
                .case_exact()
                .mutability(Mutability::ReadOnly),
        ],
    )
    .mutability(Mutability::ReadOnly),
];

/// The `schemas` attribute, which RFC 7643 lists for every resource but no schema defines.
pub const SCHEMAS_ATTRIBUTE: AttributeDef = string("schemas", "The schema URNs of the resource.")
    .multi()
    .case_exact()
    .mutability(Mutability::ReadOnly)
    .returned(Returned::Always)
    .required();

/// A schema: its URN, name and attributes.
#[derive(Debug)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttributeDef],
}

impl SchemaDef {
    pub fn attribute(&self, name: &str) -> Option<&'static AttributeDef> {
        self.attributes
            .iter()
            .find(|attribute| attribute.name.eq_ignore_ascii_case(name))
    }
}

pub static USER: SchemaDef = SchemaDef {
    id: USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: USER_ATTRIBUTES,
};
pub static ENTERPRISE_USER: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: ENTERPRISE_USER_ATTRIBUTES,
};
pub static GROUP: SchemaDef = SchemaDef {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: GROUP_ATTRIBUTES,
};
pub static SERVICE_PRINCIPAL: SchemaDef = SchemaDef {
    id: SERVICE_PRINCIPAL_SCHEMA,
    name: "ServicePrincipal",
    description: "Service Principal (Databricks)",
    attributes: SERVICE_PRINCIPAL_ATTRIBUTES,
};

/// Every schema the server publishes at `/Schemas`.
pub static ALL_SCHEMAS: [&SchemaDef; 4] = [&USER, &ENTERPRISE_USER, &GROUP, &SERVICE_PRINCIPAL];

/// The three kinds of principal. Each is a SCIM resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrincipalKind {
    User,
    Group,
    ServicePrincipal,
}

impl PrincipalKind {
    pub const ALL: [PrincipalKind; 3] = [
        PrincipalKind::User,
        PrincipalKind::Group,
        PrincipalKind::ServicePrincipal,
    ];

    pub fn resource_type(self) -> &'static ResourceTypeDef {
        match self {
            PrincipalKind::User => &USER_RESOURCE,
            PrincipalKind::Group => &GROUP_RESOURCE,
            PrincipalKind::ServicePrincipal => &SERVICE_PRINCIPAL_RESOURCE,
        }
    }

    /// The name used in `meta.resourceType`, `members.type` and storage.
    pub fn as_str(self) -> &'static str {
        self.resource_type().name
    }

    pub fn parse(name: &str) -> Option<Self> {
        PrincipalKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name))
    }

    /// Maps the endpoint segment (`Users`, `Groups`, `ServicePrincipals`) to a kind.
    pub fn from_endpoint(segment: &str) -> Option<Self> {
        PrincipalKind::ALL
            .into_iter()
            .find(|kind| kind.resource_type().endpoint.trim_start_matches('/') == segment)
    }
}

/// A SCIM resource type: its endpoint, core schema and extensions.
#[derive(Debug)]
pub struct ResourceTypeDef {
    pub kind: PrincipalKind,
    pub name: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: &'static SchemaDef,
    /// Extension schemas, each with whether it is required.
    pub extensions: &'static [(&'static SchemaDef, bool)],
}

pub static USER_RESOURCE: ResourceTypeDef = ResourceTypeDef {
    kind: PrincipalKind::User,
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: &USER,
    extensions: &[(&ENTERPRISE_USER, false)],
};
pub static GROUP_RESOURCE: ResourceTypeDef = ResourceTypeDef {
    kind: PrincipalKind::Group,
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    schema: &GROUP,
    extensions: &[],
};
pub static SERVICE_PRINCIPAL_RESOURCE: ResourceTypeDef = ResourceTypeDef {
    kind: PrincipalKind::ServicePrincipal,
    name: "ServicePrincipal",
    endpoint: "/ServicePrincipals",
    description: "Service Principal (Databricks)",
    schema: &SERVICE_PRINCIPAL,
    extensions: &[],
};

impl ResourceTypeDef {
    /// The extension schema with this URN, ignoring case (URNs are case-insensitive).
    pub fn extension(&self, urn: &str) -> Option<&'static SchemaDef> {
        self.extensions
            .iter()
            .map(|(schema, _)| *schema)
            .find(|schema| schema.id.eq_ignore_ascii_case(urn))
    }

    /// Whether `urn` names this resource type's core schema or one of its extensions.
    pub fn schema_by_urn(&self, urn: &str) -> Option<&'static SchemaDef> {
        if self.schema.id.eq_ignore_ascii_case(urn) {
            Some(self.schema)
        } else {
            self.extension(urn)
        }
    }
}
